"""Reading a view's source on Spark, and the scan every query builds on.

The scan has the columns of DuckDB's (:func:`featurestore.offline.duckdb.pit_sql.source_scan`):
``__fs_k{i}`` (join keys, cast for typed comparison), ``__fs_ets`` (event time, epoch µs),
``__fs_cts`` (created time; null as :data:`NULL_CREATED`, so it loses every tie), ``__fs_fidx``
and ``__fs_pos`` (file order, :data:`FILE_ORDER`) and ``__fs_f{i}`` (the request's features).
Rows with a null timestamp or join key, and rows before the retention cut-off, are dropped.

File order, the last tie-break, is the order of the view's file list
(:meth:`~featurestore.offline.store_data.StoreData.view_files`: the source's own files sorted by
path, then a push source's pushed files in push order), then rows by position in their file. So
a pushed row wins a full tie with a row of the source's files whatever the files' names, as it
does online, where it arrives later. Spark gives each row's file and position through the hidden
``_metadata`` column of file sources (``file_path``, a URI, is decoded back to the path, kept as
``__fs_file``; ``row_index`` counts from 0 in each file); the file's index in the list comes from
a small broadcast table of (path, index). A :class:`~featurestore.definitions.SparkSource` table
has no file list: its rows all get index 0, and if it is not file-based (no ``_metadata``
column) fully tied rows resolve by Spark's row ids, which are stable per read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow.parquet as pq
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, TimestampNTZType, TimestampType

from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.sources import SparkSource
from featurestore.errors import SourceSchemaError
from featurestore.offline.base import FeatureRequest
from featurestore.offline.spark.session import epoch_micros, key_type, quoted
from featurestore.offline.store_data import StoreData

#: Sorts below every real epoch value, so a null created timestamp loses every tie.
NULL_CREATED = -(2**63) + 1
#: The scan's file order columns: the file's index in the view's file list, the row's position.
FILE_ORDER = ("__fs_fidx", "__fs_pos")


@dataclass(frozen=True)
class SparkSourceFrame:
    """A view's source rows as Spark reads them, with file order columns appended, and the
    files listed for it (empty for a table)."""

    view: FeatureView
    frame: DataFrame
    files: tuple[str, ...] = ()

    def column_type(self, name: str) -> DataType | None:
        """The Spark type of source column ``name`` (``None`` when it is absent)."""
        fields = {f.name: f.dataType for f in self.frame.schema.fields}
        return fields.get(name)


def read_source(
    session: SparkSession, data: StoreData, view: FeatureView, *, own_files_only: bool = False
) -> SparkSourceFrame:
    """The view's source: a table (:class:`SparkSource`) or its Parquet files plus, for a push
    source, what was pushed to the offline store (unless ``own_files_only``)."""
    source = view.source
    files: list[str] = []
    try:
        if isinstance(source, SparkSource):
            frame = session.table(source.table)
        else:
            files = source.files(data.repo_path) if own_files_only else data.view_files(view)
            reader = session.read
            if _schemas_differ(files):  # merging costs a Spark job: only when files differ
                reader = reader.option("mergeSchema", "true")
            frame = reader.parquet(*files)
    except AnalysisException as exc:
        raise SourceSchemaError(f"{view.label}: reading its source failed: {exc}") from exc
    try:
        path = F.url_decode(F.replace(F.col("_metadata.file_path"), F.lit("+"), F.lit("%2B")))
        ordered = frame.select(
            "*",
            F.regexp_replace(path, r"^file:(//)?", "").alias("__fs_file"),
            F.col("_metadata.row_index").alias("__fs_pos"),
        )
    except AnalysisException:  # not a file source: no _metadata column
        ordered = frame.select(
            "*", F.lit("").alias("__fs_file"), F.monotonically_increasing_id().alias("__fs_pos")
        )
    ordered = with_file_index(session, ordered, files)
    result = SparkSourceFrame(view, ordered, tuple(files))
    _check_columns(result)
    return result


def with_file_index(session: SparkSession, frame: DataFrame, files: list[str]) -> DataFrame:
    """``frame`` with ``__fs_fidx``: the index in ``files`` of each row's file (``__fs_file``),
    found by a broadcast join on the path (0 for every row of a table, which has no list). A row
    whose file matches no path of the list fails the query when it is read, naming the file:
    a null index would sort first and silently settle its ties the wrong way."""
    if len(files) < 2:
        return frame.withColumn("__fs_fidx", F.lit(0))
    # The paths as _metadata.file_path reports them once decoded: absolute, normalized.
    index = session.createDataFrame(
        [(os.path.abspath(f), i) for i, f in enumerate(files)],
        "__fs_file string, __fs_fidx int",
    )
    unmatched = F.raise_error(
        F.concat(
            F.lit("a row's file is not in the view's file list, so its order is unknown: "),
            F.col("__fs_file"),
        )
    )
    joined = frame.join(F.broadcast(index), "__fs_file", "left")
    # coalesce evaluates the error only for a row without an index.
    return joined.withColumn("__fs_fidx", F.coalesce("__fs_fidx", unmatched.cast("int")))


def _schemas_differ(files: list[str]) -> bool:
    """Whether the files' Parquet schemas differ (read from their footers on the driver)."""
    if len(files) < 2 or any("://" in f for f in files):
        return len(files) > 1
    first = pq.read_schema(files[0])
    return any(not pq.read_schema(f).equals(first) for f in files[1:])


def _check_columns(source: SparkSourceFrame) -> None:
    view = source.view
    needed = [view.source.source_column(k) for k in view.join_keys]
    needed += [
        view.source.source_column(c.name) for c in view.columns
    ]  # an aggregated view's inputs
    needed.append(view.source.timestamp_field)
    if view.source.created_timestamp_column is not None:
        needed.append(view.source.created_timestamp_column)
    present = set(source.frame.columns)
    missing = [c for c in needed if c not in present]
    if missing:
        raise SourceSchemaError(
            f"{view.label}: its source has no column {missing[0]!r}; it has "
            f"{sorted(present - {'__fs_file', *FILE_ORDER})}. Fix the view's schema, "
            "field_mapping or source."
        )


def micros(source: SparkSourceFrame, name: str) -> Column:
    """Source column ``name`` as epoch µs."""
    dtype = source.column_type(name)
    assert dtype is not None  # checked by read_source
    return epoch_micros(name, dtype, source.view.label)


def source_scan(
    source: SparkSourceFrame,
    request: FeatureRequest,
    *,
    low_us: int | None = None,
    high_us: int | None = None,
    require_created: bool = False,
) -> DataFrame:
    """The scan described in the module's docstring; ``low_us`` / ``high_us`` (inclusive) only
    prune (the caller applies its exact window), ``require_created`` drops rows without a
    created timestamp (``filter_by_created_timestamp``)."""
    view = request.view
    src = view.source
    columns: list[Column] = []
    for i, (key, dtype) in enumerate(view.join_key_types.items()):
        column = F.col(quoted(src.source_column(key)))
        cast = key_type(dtype)
        columns.append((column if cast is None else column.cast(cast)).alias(f"__fs_k{i}"))
    columns.append(micros(source, src.timestamp_field).alias("__fs_ets"))
    created = src.created_timestamp_column
    if created is not None:
        columns.append(F.coalesce(micros(source, created), F.lit(NULL_CREATED)).alias("__fs_cts"))
    columns += [F.col(name) for name in FILE_ORDER]
    columns += [
        F.col(quoted(src.source_column(name))).alias(f"__fs_f{i}")
        for i, name in enumerate(request.features)
    ]
    condition = F.col(quoted(src.timestamp_field)).isNotNull()
    for key in view.join_keys:
        condition &= F.col(quoted(src.source_column(key))).isNotNull()
    if require_created and created is not None:
        condition &= F.col(quoted(created)).isNotNull()
    if request.not_before_us is not None:
        low_us = request.not_before_us if low_us is None else max(low_us, request.not_before_us)
        condition &= micros(source, src.timestamp_field) >= F.lit(request.not_before_us)
    condition = _prune(source, condition, low_us, high_us)
    return source.frame.where(condition).select(*columns)


def _prune(
    source: SparkSourceFrame, condition: Column, low_us: int | None, high_us: int | None
) -> Column:
    """Bounds on the raw timestamp column, which Spark pushes into the Parquet scan; widened by
    a microsecond (nanosecond values round), the exact window is applied on epoch values."""
    name = source.view.source.timestamp_field
    dtype = source.column_type(name)
    if not isinstance(dtype, TimestampType | TimestampNTZType):
        return condition
    column = F.col(quoted(name))
    for bound, above in ((low_us, True), (high_us, False)):
        if bound is None:
            continue
        literal = F.timestamp_micros(F.lit(bound - 1 if above else bound + 1))
        if isinstance(dtype, TimestampNTZType):
            literal = literal.cast("timestamp_ntz")
        condition &= column >= literal if above else column <= literal
    return condition


def first_copies(
    scan: DataFrame, source: SparkSourceFrame, keys: Sequence[str], event_id: str
) -> DataFrame:
    """``scan`` (of :func:`source_scan`) with, among the rows sharing the ``keys`` and a non-null
    value of the ``event_id`` column, only the first copy to arrive: least created time (null
    first), then file order; rows without an event id are kept."""
    has_created = source.view.source.created_timestamp_column is not None
    arrival = [*(["__fs_cts"] if has_created else []), *FILE_ORDER]
    copy = F.row_number().over(Window.partitionBy(*keys, event_id).orderBy(*arrival))
    return (
        scan.withColumn("__fs_copy", copy)
        .where(F.col(event_id).isNull() | (F.col("__fs_copy") == 1))
        .drop("__fs_copy")
    )
