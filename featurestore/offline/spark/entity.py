"""The entity frame on Spark: its row ids, timestamps in epoch µs and join keys.

An in-memory frame (pandas, polars, Arrow) or a Parquet path is normalized as for every engine
(:mod:`featurestore.offline.entity_frame`; a path is read on the driver, files in path order) and
only the columns the join needs (row id, timestamp, join keys) go to Spark: the result's entity
columns come back from the input untouched, in input order. A Spark DataFrame stays on the
cluster: its row order is the order of its partitions (``monotonically_increasing_id``), and it is
persisted so that order is read once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import DataType, DateType, TimestampNTZType, TimestampType

from featurestore.errors import EntityFrameError
from featurestore.offline.base import EntityFrameInput, FeatureRequest
from featurestore.offline.entity_frame import (
    DEFAULT_TIMESTAMP_COLUMN,
    ROW_ID,
    EntityFrame,
    load_entity_frame,
)
from featurestore.offline.spark.pit import ENTITY_TS
from featurestore.offline.spark.session import epoch_micros, quoted


@dataclass(frozen=True)
class SparkEntity:
    """A normalized entity frame: ``keys`` (Spark: :data:`ROW_ID`, :data:`ENTITY_TS`, the join
    keys by name) and either ``table`` (the input in memory, :data:`ROW_ID` appended) or
    ``frame`` (the input Spark DataFrame with :data:`ROW_ID`, persisted)."""

    normalized: EntityFrame
    keys: DataFrame
    table: pa.Table | None = None
    frame: DataFrame | None = None
    min_ts_us: int | None = None
    max_ts_us: int | None = None

    def release(self) -> None:
        """Drop the persisted copy of a Spark input."""
        if self.frame is not None:
            self.frame.unpersist()


def prepare_entity(
    session: SparkSession, entity_df: EntityFrameInput, requests: Sequence[FeatureRequest]
) -> SparkEntity:
    """The entity frame of a retrieval, ready to join; see the module's docstring."""
    key_names = list(dict.fromkeys(k for r in requests for k in r.view.join_keys))
    if isinstance(entity_df, DataFrame):
        return _from_spark(entity_df, key_names)
    frame = load_entity_frame(entity_df)
    table = frame.table if frame.table is not None else _read_files(frame.parquet_files)
    micros = _epoch_micros(table.column(frame.timestamp_column))
    shipped = {ROW_ID: table.column(ROW_ID), ENTITY_TS: micros}
    for key in key_names:
        if key in table.schema.names:
            shipped[key] = spark_safe(table.column(key))
    bounds = pc.min_max(micros).as_py() if len(micros) else {"min": None, "max": None}
    keys = session.createDataFrame(pa.table(shipped))
    return SparkEntity(
        normalized=frame,
        keys=keys,
        table=table,
        min_ts_us=bounds["min"],
        max_ts_us=bounds["max"],
    )


def _read_files(files: Sequence[str]) -> pa.Table:
    table = pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")
    return table.append_column(ROW_ID, pa.array(np.arange(table.num_rows, dtype=np.int64)))


def _epoch_micros(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Timestamps as epoch µs (UTC): naive ones are UTC, dates are midnight UTC."""
    dtype = column.type
    if pa.types.is_date(dtype):
        column = column.cast(pa.timestamp("us"))
        dtype = column.type
    tz = dtype.tz if pa.types.is_timestamp(dtype) else None
    return column.cast(pa.timestamp("us", tz=tz), safe=False).cast(pa.int64())


def spark_safe(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A key column in a type Spark takes from Arrow (no dictionaries, large or view strings)."""
    dtype = column.type
    if pa.types.is_dictionary(dtype):
        column = column.cast(dtype.value_type)
        dtype = column.type
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return column.cast(pa.string())
    if pa.types.is_large_binary(dtype) or pa.types.is_binary_view(dtype):
        return column.cast(pa.binary())
    if pa.types.is_null(dtype):
        return column.cast(pa.string())
    return column


def _from_spark(frame: DataFrame, key_names: Sequence[str]) -> SparkEntity:
    reserved = [c for c in frame.columns if c.startswith("__fs_")]
    if reserved:
        raise EntityFrameError(f"entity_df columns {reserved} use the reserved prefix '__fs_'")
    fields = {f.name: f.dataType for f in frame.schema.fields}
    timestamp = _timestamp_column(fields)
    with_ids = frame.withColumn(ROW_ID, F.monotonically_increasing_id()).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    micros = epoch_micros(timestamp, fields[timestamp], "entity_df")
    keys = with_ids.select(
        F.col(ROW_ID),
        micros.alias(ENTITY_TS),
        *[F.col(quoted(k)) for k in key_names if k in fields],
    )
    normalized = EntityFrame(schema=to_arrow_schema(frame.schema), timestamp_column=timestamp)
    return SparkEntity(normalized=normalized, keys=keys, frame=with_ids)


def _timestamp_column(fields: Mapping[str, DataType]) -> str:
    kinds = (TimestampType, TimestampNTZType, DateType)
    if DEFAULT_TIMESTAMP_COLUMN in fields:
        if not isinstance(fields[DEFAULT_TIMESTAMP_COLUMN], kinds):
            raise EntityFrameError(
                f"entity_df column {DEFAULT_TIMESTAMP_COLUMN!r} must hold timestamps, but it is "
                f"{fields[DEFAULT_TIMESTAMP_COLUMN]}"
            )
        return DEFAULT_TIMESTAMP_COLUMN
    candidates = [n for n, t in fields.items() if isinstance(t, TimestampType | TimestampNTZType)]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise EntityFrameError(
            f"entity_df has no timestamp column: add an {DEFAULT_TIMESTAMP_COLUMN!r} column of "
            f"timestamps (columns: {list(fields)})"
        )
    raise EntityFrameError(
        f"entity_df has several timestamp columns {candidates}: name the one to join on "
        f"{DEFAULT_TIMESTAMP_COLUMN!r}"
    )
