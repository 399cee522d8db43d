"""Removing rows from Parquet files the store owns, never leaving a half-written file.

    older = older_than("event_timestamp", cutoff_us)
    removed = remove_rows(path, older, dry_run=False)

A file is first scanned for matching rows, reading only the columns the filter needs. On a dry
run, or when nothing matches, the file is left as it is. Otherwise the kept rows are streamed into
a new file under a dot-name in the same folder (no reader lists dot-names), flushed to disk, and
renamed over the original (``os.replace`` is atomic): a reader sees the old file or the new one,
never a mix. When no row is kept the file is deleted, or with ``keep_empty`` replaced by a file
with the same schema and no rows. The kept rows keep their order, and the file keeps its name, so
the point-in-time join's file-order tie-break is unchanged.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: Rows to remove in a batch: a boolean array, True = remove (null counts as keep).
RowMask = Callable[[pa.RecordBatch], pa.Array]

_US_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}
_US_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class RowFilter:
    """Which rows to remove: ``mask`` over batches holding ``columns``.

    A file that lacks one of the columns has no matching row, unless ``required``: then it is an
    error (a pushed file without its source's timestamp column is not one the store wrote).
    """

    columns: tuple[str, ...]
    mask: RowMask
    required: bool = False


class RowFilterError(ValueError):
    """A file cannot be filtered (unreadable, or lacking a required column); callers turn it into
    the error of their run, naming the file."""


def older_than(column: str, cutoff_us: int) -> RowFilter:
    """Rows whose ``column`` (a timestamp or date) is strictly before ``cutoff_us`` (epoch µs,
    UTC; naive timestamps are UTC). A null timestamp is not older than anything."""

    def mask(batch: pa.RecordBatch) -> pa.Array:
        values = batch.column(column)
        cutoff = _cutoff_in(values.type, cutoff_us, column)
        # Stored integers in the column's unit (date32 casts to integers through int32).
        raw = values.cast(pa.int32()) if pa.types.is_date32(values.type) else values
        return pc.less(raw.cast(pa.int64()), cutoff)

    return RowFilter((column,), mask, required=True)


def _cutoff_in(kind: pa.DataType, cutoff_us: int, column: str) -> int:
    """``cutoff_us`` in the column's own unit, so ``value < result`` exactly when the value's
    instant is before the cut-off (coarser units round the cut-off up; a nanosecond value is
    compared at full precision)."""
    if pa.types.is_timestamp(kind):
        if kind.unit == "ns":
            return cutoff_us * 1_000
        return -(-cutoff_us // _US_PER_UNIT[kind.unit])
    if pa.types.is_date32(kind):
        return -(-cutoff_us // _US_PER_DAY)
    if pa.types.is_date64(kind):
        return -(-cutoff_us // 1_000)
    raise RowFilterError(f"column {column!r} is {kind}, not a timestamp")


def keys_equal(values: Mapping[str, Any]) -> RowFilter:
    """Rows whose columns all equal ``values`` (column -> a pyarrow scalar of the key's type or
    a plain value), compared in the column's type; a value the column's type cannot hold
    matches nothing, and neither does a null."""

    def mask(batch: pa.RecordBatch) -> pa.Array:
        result = pa.array([True] * batch.num_rows, pa.bool_())
        for name, value in values.items():
            column = batch.column(name)
            if pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()
            try:
                scalar = value if isinstance(value, pa.Scalar) else pa.scalar(value)
                scalar = scalar.cast(column.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                return pa.array([False] * batch.num_rows, pa.bool_())
            equal = pc.fill_null(pc.equal(column, scalar), False)
            result = pc.and_(result, equal)
        return result

    return RowFilter(tuple(values), mask)


def count_rows(path: Path, row_filter: RowFilter) -> int:
    """How many rows of the file at ``path`` the filter matches."""
    return remove_rows(path, row_filter, dry_run=True)


def remove_rows(
    path: Path, row_filter: RowFilter, *, dry_run: bool = False, keep_empty: bool = False
) -> int:
    """Remove the rows ``row_filter`` matches from the Parquet file at ``path``; returns how
    many matched (and, unless ``dry_run``, were removed)."""
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        missing = [c for c in row_filter.columns if c not in schema.names]
        if missing:
            if row_filter.required:
                raise RowFilterError(f"{path} has no column {missing[0]!r}")
            return 0
        matched = 0
        for batch in parquet.iter_batches(columns=list(row_filter.columns)):
            matched += (
                pc.sum(pc.fill_null(row_filter.mask(batch), False).cast(pa.int64())).as_py() or 0
            )
        if dry_run or matched == 0:
            return matched
        if matched == parquet.metadata.num_rows and not keep_empty:
            path.unlink()
            return matched
        _rewrite(path, parquet, row_filter)
    except (OSError, pa.ArrowException) as exc:
        raise RowFilterError(f"{path}: {exc}") from exc
    return matched


def _rewrite(path: Path, parquet: pq.ParquetFile, row_filter: RowFilter) -> None:
    """Stream the kept rows into a staged file, then put it in the original's place."""
    staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with pq.ParquetWriter(staged, parquet.schema_arrow) as writer:
            for batch in parquet.iter_batches():
                keep = pc.invert(pc.fill_null(row_filter.mask(batch), False))
                writer.write_batch(batch.filter(keep))
        with open(staged, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(staged, path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
