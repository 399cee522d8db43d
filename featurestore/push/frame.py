"""Checking and converting pushed rows into the push source's columns and types.

A push names a :class:`~featurestore.definitions.sources.PushSource`; its rows use the batch
source's column names. Every column a view of that source reads is required (timestamp, join keys,
features); the created-timestamp column is optional and defaults to the moment of the push, so a
later push of the same event time wins. Extra columns are ignored (and reported).

Each value is converted to the type its column has in the batch source's Parquet schema, without
loss: an integer column takes integers (or floats that are whole numbers, as pandas makes of an
integer column with nulls), a float column integers or floats, a string column strings, a
timestamp column datetimes or ISO 8601 strings (naive ones are UTC). Join keys and event
timestamps may not be null. Anything else is a :class:`PushError` naming the column and the first
bad value, raised before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.sources import PushSource
from featurestore.errors import PushError

#: What ``store.push`` takes: a pandas DataFrame, an Arrow table, or columns by name.
PushInput: TypeAlias = pd.DataFrame | pa.Table | Mapping[str, Sequence[Any]]


@dataclass(frozen=True)
class PushColumns:
    """The columns a push to one source must carry, with their Parquet types."""

    source: PushSource
    required: dict[str, pa.DataType]  # source column -> type, timestamp first
    key_columns: tuple[str, ...]  # source columns that are join keys (non-null)
    created: tuple[str, pa.DataType] | None  # optional created-timestamp column


@dataclass
class PushFrame:
    """Pushed rows converted to the source's columns and types, ready to be written."""

    columns: PushColumns
    table: pa.Table
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)


def push_columns(source: PushSource, views: Sequence[FeatureView], repo_path: Any) -> PushColumns:
    """What a push to ``source`` must carry for ``views`` (the views that read it)."""
    files = source.files(repo_path)
    schema = pq.read_schema(files[0])

    def typed(column: str, role: str) -> pa.DataType:
        if column not in schema.names:
            raise PushError(
                f"push source {source.name!r}: its batch source {files[0]} has no column "
                f"{column!r} ({role}); re-apply the views after fixing the source"
            )
        dtype = schema.field(column).type
        return dtype.value_type if pa.types.is_dictionary(dtype) else dtype

    required = {source.timestamp_field: typed(source.timestamp_field, "timestamp field")}
    keys: dict[str, None] = {}
    for view in views:
        for key in view.join_keys:
            column = source.source_column(key)
            required[column] = typed(column, f"join key of {view.label}")
            keys[column] = None
        # An aggregated view's source columns are what it aggregates, not its features.
        for name in (c.name for c in view.columns):
            column = source.source_column(name)
            required.setdefault(column, typed(column, f"column of {view.label}"))
    created = source.created_timestamp_column
    return PushColumns(
        source=source,
        required=required,
        key_columns=tuple(keys),
        created=None if created is None else (created, typed(created, "created timestamp")),
    )


def push_frame(data: PushInput, columns: PushColumns, *, now: datetime | None = None) -> PushFrame:
    """Check and convert ``data``; raises :class:`PushError` before anything is written."""
    label = f"push to {columns.source.name!r}"
    given = columns_of(data, label)
    rows = row_count(given, label)
    missing = [name for name in columns.required if name not in given]
    if missing:
        raise PushError(
            f"{label}: missing column(s) {missing}; a push carries the source's timestamp "
            f"column, every join key and every feature: {list(columns.required)}"
        )
    converted = {
        name: convert_column(given[name], dtype, f"{label}: column {name!r}")
        for name, dtype in columns.required.items()
    }
    for name in (columns.source.timestamp_field, *columns.key_columns):
        check_not_null(converted[name], f"{label}: column {name!r}")
    if columns.created is not None:
        name, dtype = columns.created
        if name in given:
            converted[name] = convert_column(given[name], dtype, f"{label}: column {name!r}")
        else:
            moment = now if now is not None else datetime.now(timezone.utc)
            converted[name] = pa.array([moment] * rows, pa.timestamp("us", tz="UTC")).cast(dtype)
    known = set(converted)
    ignored = [name for name in given if name not in known]
    return PushFrame(columns, pa.table(converted), ignored)


def columns_of(data: PushInput, label: str) -> dict[str, Any]:
    """``data``'s columns by name; :class:`PushError` (prefixed with ``label``) when it is not
    a frame, a table or a mapping of names to lists."""
    if isinstance(data, pd.DataFrame):
        if not all(isinstance(c, str) for c in data.columns):
            raise PushError(f"{label}: column names must be strings, got {list(data.columns)}")
        if data.columns.duplicated().any():
            raise PushError(f"{label}: duplicate column names in {list(data.columns)}")
        return {name: data[name] for name in data.columns}
    if isinstance(data, pa.Table | pa.RecordBatch):
        if len(set(data.schema.names)) != len(data.schema.names):
            raise PushError(f"{label}: duplicate column names in {data.schema.names}")
        return {name: data.column(name) for name in data.schema.names}
    if isinstance(data, Mapping):
        for name, values in data.items():
            if not isinstance(name, str):
                raise PushError(f"{label}: column names must be strings, got {name!r}")
            if isinstance(values, str | bytes) or not isinstance(values, Sequence | pa.Array):
                raise PushError(
                    f"{label}: column {name!r} must be a list of values, got "
                    f"{type(values).__name__}"
                )
        return dict(data)
    raise PushError(
        f"{label}: rows must be a pandas DataFrame, a pyarrow Table or a mapping of column "
        f"names to lists, got {type(data).__name__}"
    )


def row_count(given: Mapping[str, Any], label: str) -> int:
    """The number of rows of ``given``; :class:`PushError` when its columns differ in length."""
    lengths = {name: len(values) for name, values in given.items()}
    if len(set(lengths.values())) > 1:
        raise PushError(f"{label}: columns have different lengths: {lengths}")
    return next(iter(lengths.values()), 0)


def convert_column(values: Any, target: pa.DataType, what: str) -> pa.Array:
    """``values`` as an Arrow array of ``target``, without loss or a change of kind."""
    array = infer_array(values, what)
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), target)
    if pa.types.is_timestamp(target) or pa.types.is_date(target):
        return _to_timestamp(array, target, what)
    wanted = _kind(target)
    if _kind(array.type) not in _ACCEPTS.get(wanted, {wanted}):
        bad = _first_valid(array)
        raise PushError(f"{what} must hold {target} values, got {array.type} (e.g. {bad!r})")
    try:
        return array.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise PushError(f"{what}: cannot convert to {target} without loss: {exc}") from None


def infer_array(values: Any, what: str) -> pa.Array:
    """``values`` as an Arrow array of the type they have; :class:`PushError` naming ``what``
    when they mix types Arrow cannot hold in one column."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    try:
        if isinstance(values, pd.Series):
            return pa.Array.from_pandas(values)
        return pa.array(list(values), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        raise PushError(f"{what}: values of mixed or unsupported types: {exc}") from None


def _to_timestamp(array: pa.Array, target: pa.DataType, what: str) -> pa.Array:
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        try:
            parsed = pd.to_datetime(pd.Series(array.to_pylist()), utc=True, format="ISO8601")
        except (ValueError, TypeError, OverflowError) as exc:
            raise PushError(f"{what}: not an ISO 8601 timestamp: {exc}") from None
        array = pa.Array.from_pandas(parsed)
    if not (pa.types.is_timestamp(array.type) or pa.types.is_date(array.type)):
        raise PushError(
            f"{what} must hold timestamps (datetimes or ISO 8601 strings), got {array.type} "
            f"(e.g. {_first_valid(array)!r})"
        )
    # Time zones are converted to UTC; naive values are UTC. Finer precision than the column
    # holds is truncated, as the offline engine reads it.
    try:
        return array.cast(target, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise PushError(f"{what}: cannot convert to {target}: {exc}") from None


def check_not_null(array: pa.Array, what: str) -> None:
    """:class:`PushError` naming ``what`` and the first null row, if ``array`` has nulls."""
    nulls = array.null_count
    if nulls:
        first = pc.index(pc.is_null(array), True).as_py()
        raise PushError(f"{what} has {nulls} null value(s) (first at row {first}); it may not")


def _first_valid(array: pa.Array) -> Any:
    valid = array.drop_null()
    return valid[0].as_py() if len(valid) else None


def _kind(dtype: pa.DataType) -> str:
    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_integer(dtype):
        return "int"
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "float"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        return "binary"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return "list"
    return str(dtype)


# Which kinds of pushed values each kind of column takes (a cast then checks for loss).
_ACCEPTS: dict[str, set[str]] = {
    "bool": {"bool"},
    "int": {"int", "float"},
    "float": {"int", "float"},
    "string": {"string"},
    "binary": {"binary", "string"},
    "list": {"list"},
}
