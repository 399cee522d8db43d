"""Normalizing the ``entity_df`` of a retrieval into something an offline engine can scan.

pandas, polars and pyarrow inputs become one Arrow table (polars and Arrow without copying the
data) with a row-position column appended; a Parquet path (file, folder or glob) is left on disk
for the engine to read. The timestamp column is ``event_timestamp`` if present, else the only
timestamp-typed column. Naive timestamps are UTC; aware ones are converted to UTC.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.errors import EntityFrameError, FeatureReferenceError
from featurestore.offline.base import EntityFrameInput, FeatureRequest
from featurestore.types import ValueType, arrow_compatible

DEFAULT_TIMESTAMP_COLUMN = "event_timestamp"
#: Column added to the entity frame: the input row position (0-based), used to keep order.
ROW_ID = "__fs_row"
_RESERVED_PREFIX = "__fs_"


@dataclass(frozen=True)
class EntityFrame:
    """A normalized entity frame.

    Exactly one of ``table`` (in memory, with :data:`ROW_ID` appended) and ``parquet_files``
    is set. ``schema`` describes the input columns only, in input order.
    """

    schema: pa.Schema
    timestamp_column: str
    table: pa.Table | None = None
    parquet_files: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """The input column names, in input order."""
        return tuple(self.schema.names)


def load_entity_frame(entity_df: EntityFrameInput) -> EntityFrame:
    """Normalize ``entity_df`` (pandas, polars, pyarrow, or a Parquet path) into an EntityFrame."""
    if isinstance(entity_df, str | os.PathLike):
        files = _parquet_files(os.fspath(entity_df))
        schema = _read_schema(files[0])
        return EntityFrame(
            schema=schema, timestamp_column=_timestamp_column(schema), parquet_files=files
        )
    if isinstance(entity_df, pd.DataFrame):
        table = _from_pandas(entity_df)
    elif isinstance(entity_df, pl.DataFrame):
        table = entity_df.to_arrow()
    elif isinstance(entity_df, pa.Table):
        table = entity_df
    else:
        raise EntityFrameError(
            f"entity_df must be a pandas or polars DataFrame, a pyarrow Table or a Parquet path, "
            f"got {type(entity_df).__name__}"
        )
    _check_names(table.schema)
    timestamp_column = _timestamp_column(table.schema)
    rows = pa.array(np.arange(table.num_rows, dtype=np.int64))
    return EntityFrame(
        schema=table.schema,
        timestamp_column=timestamp_column,
        table=table.append_column(ROW_ID, rows),
    )


def _from_pandas(frame: pd.DataFrame) -> pa.Table:
    if not all(isinstance(c, str) for c in frame.columns):
        raise EntityFrameError(
            f"entity_df column names must be strings, got {list(frame.columns)!r}"
        )
    column = DEFAULT_TIMESTAMP_COLUMN
    if column in frame.columns and frame[column].dtype == object:
        # An object column may mix time zones (and naive values); pandas settles it in UTC.
        try:
            utc = pd.to_datetime(frame[column], utc=True)
        except (ValueError, TypeError) as exc:
            raise EntityFrameError(
                f"entity_df column {column!r} holds values that are not timestamps: {exc}"
            ) from None
        frame = frame.assign(**{column: utc})
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise EntityFrameError(f"entity_df could not be converted to Arrow: {exc}") from None


def _parquet_files(path: str) -> tuple[str, ...]:
    if any(c in path for c in "*?["):
        files = sorted(glob.glob(path, recursive=True))
    elif os.path.isdir(path):
        files = sorted(str(p) for p in Path(path).rglob("*.parquet"))
    else:
        files = [path] if os.path.isfile(path) else []
    if not files:
        raise EntityFrameError(f"entity_df path {path!r} matches no Parquet file")
    return tuple(os.path.abspath(f) for f in files)


def _read_schema(path: str) -> pa.Schema:
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise EntityFrameError(f"entity_df file {path!r} is not readable Parquet: {exc}") from None
    _check_names(schema)
    return schema


def _check_names(schema: pa.Schema) -> None:
    reserved = [n for n in schema.names if n.startswith(_RESERVED_PREFIX)]
    if reserved:
        raise EntityFrameError(
            f"entity_df columns {reserved} use the reserved prefix {_RESERVED_PREFIX!r}"
        )


def _timestamp_column(schema: pa.Schema) -> str:
    if DEFAULT_TIMESTAMP_COLUMN in schema.names:
        dtype = schema.field(DEFAULT_TIMESTAMP_COLUMN).type
        if not (pa.types.is_timestamp(dtype) or pa.types.is_date(dtype)):
            raise EntityFrameError(
                f"entity_df column {DEFAULT_TIMESTAMP_COLUMN!r} must hold timestamps, but it is {dtype}"
            )
        return DEFAULT_TIMESTAMP_COLUMN
    candidates = [str(f.name) for f in schema if pa.types.is_timestamp(f.type)]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise EntityFrameError(
            f"entity_df has no timestamp column: add an {DEFAULT_TIMESTAMP_COLUMN!r} column of "
            f"timestamps (columns: {schema.names})"
        )
    raise EntityFrameError(
        f"entity_df has several timestamp columns {candidates}: name the one to join on "
        f"{DEFAULT_TIMESTAMP_COLUMN!r}"
    )


def check_join_keys(
    frame: EntityFrame,
    requests: Sequence[FeatureRequest],
    source_key_types: Mapping[str, Mapping[str, pa.DataType]],
) -> None:
    """Raise EntityFrameError when a view's join key is missing or cannot compare with its type.

    A key's declared type is checked when the entity declares one; otherwise the frame's column
    must be of the same kind (integer, string, ...) as the source's column, given per view name
    in ``source_key_types``.
    """
    for request in requests:
        view = request.view
        for key, declared in view.join_key_types.items():
            if key not in frame.schema.names:
                raise EntityFrameError(
                    f"entity_df has no column {key!r}, the join key {view.label} needs "
                    f"(columns: {list(frame.columns)})"
                )
            actual = frame.schema.field(key).type
            expected = source_key_types.get(view.name, {}).get(key)
            if not _key_compatible(declared, expected, actual):
                wanted = (
                    declared.name if declared is not None else f"{expected} (its source column)"
                )
                raise EntityFrameError(
                    f"entity_df column {key!r} is {actual}, which cannot be compared with join key "
                    f"{key!r} of {view.label}, declared {wanted}" + _float_hint(declared, actual)
                )


def _key_compatible(
    declared: ValueType | None, source: pa.DataType | None, actual: pa.DataType
) -> bool:
    if pa.types.is_null(actual):
        return True  # an all-null column never matches, but is not a type error
    actual = _plain(actual)
    if declared is not None:
        return arrow_compatible(declared, actual)
    if source is None:
        return True
    return _kind(_plain(source)) == _kind(actual)


def _plain(dtype: pa.DataType) -> pa.DataType:
    """Strip encodings that do not change what a value means (dictionary, string views)."""
    if pa.types.is_dictionary(dtype):
        return _plain(dtype.value_type)
    if pa.types.is_string_view(dtype):
        return pa.string()
    if pa.types.is_binary_view(dtype):
        return pa.binary()
    return dtype


def _kind(dtype: pa.DataType) -> str:
    checks = (
        ("integer", pa.types.is_integer),
        ("float", pa.types.is_floating),
        ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
        ("binary", lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t)),
        ("bool", pa.types.is_boolean),
        ("timestamp", pa.types.is_timestamp),
    )
    for kind, check in checks:
        if check(dtype):
            return kind
    return str(dtype)


def _float_hint(declared: ValueType | None, actual: pa.DataType) -> str:
    if (
        declared is not None
        and declared.name in {"Int32", "Int64"}
        and pa.types.is_floating(actual)
    ):
        return (
            " (pandas turns integer columns with missing values into floats; use the 'Int64' dtype)"
        )
    return ""


def check_output_names(frame: EntityFrame, requests: Sequence[FeatureRequest]) -> None:
    """Raise FeatureReferenceError when a feature's output name is already an entity column."""
    columns = set(frame.columns)
    for request in requests:
        for output in request.output_names:
            if output in columns:
                raise FeatureReferenceError(
                    f"feature {output!r} of {request.view.label} has the same name as an entity_df "
                    "column; rename the column or use full_feature_names=True"
                )
