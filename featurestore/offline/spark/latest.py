"""The latest row per entity key on Spark (materialization), streamed partition by partition.

Same candidates and the same winner as the point-in-time join (:mod:`.pit`): the scan's rows in
the window, grouped by join-key tuple, ``max`` of the ordering struct. The result is persisted on
the cluster (memory, then disk), counted, then handed to the driver one hash partition of keys at
a time, so the driver holds at most :data:`PART_ROWS` rows (or ``batch_rows``) whatever the view's
size. Output columns follow the online write conventions, as DuckDB's
(:mod:`featurestore.offline.duckdb.latest_sql`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from featurestore.errors import RetrievalError
from featurestore.offline.base import FeatureRequest, LatestRows, LatestWindow
from featurestore.offline.spark.pit import ordered_values
from featurestore.offline.spark.scan import NULL_CREATED, SparkSourceFrame, source_scan
from featurestore.offline.spark.session import convert_value, spark_type

#: Rows of one partition handed to the driver at a time (at least ``batch_rows``).
PART_ROWS = 250_000
EVENT_TS_COLUMN = "__fs_event_ts"
CREATED_TS_COLUMN = "__fs_created_ts"
_CANDIDATES = "__fs_candidates"
_MAX_CREATED = "__fs_max_created"
_PART = "__fs_part"


def latest_frame(source: SparkSourceFrame, window: LatestWindow) -> DataFrame:
    """One row per join-key tuple: the latest qualifying row, shaped for an online write, plus
    the per-key candidate count and latest created time."""
    view = source.view
    features = tuple(view.feature_names)
    request = FeatureRequest(view, features, features, not_before_us=window.not_before_us)
    # Late rows may carry any old event time, so only the upper bound can prune after a watermark.
    low_us = window.start_us if window.changed_after is None else None
    scan = source_scan(source, request, low_us=low_us, high_us=window.end_us)
    has_created = view.source.created_timestamp_column is not None
    condition = F.col("__fs_ets") <= F.lit(window.end_us)
    if window.start_us is not None:
        condition &= F.col("__fs_ets") >= F.lit(window.start_us)
    if window.changed_after is not None:
        event_after, created_after = window.changed_after
        changed = F.col("__fs_ets") > F.lit(event_after)
        if has_created:
            after = NULL_CREATED if created_after is None else created_after
            changed |= F.col("__fs_cts") > F.lit(after)
        condition &= changed
    keys = [f"__fs_k{i}" for i in range(len(view.join_keys))]
    created: Column = F.max("__fs_cts") if has_created else F.lit(None).cast("bigint")
    grouped = (
        scan.where(condition)
        .groupBy(*keys)
        .agg(
            F.max(ordered_values(request)).alias("__fs_val"),
            F.count(F.lit(1)).alias(_CANDIDATES),
            created.alias(_MAX_CREATED),
        )
        .where(F.col(_CANDIDATES) > 0)
    )
    outputs: list[Column] = []
    for i, (key, dtype) in enumerate(view.join_key_types.items()):
        column = F.col(f"__fs_k{i}")
        outputs.append((column if dtype is None else column.cast(spark_type(dtype))).alias(key))
    outputs.append(F.col("__fs_val.__fs_ets").alias(EVENT_TS_COLUMN))
    created_ts = (
        _not_sentinel(F.col("__fs_val.__fs_cts")) if has_created else F.lit(None).cast("bigint")
    )
    outputs.append(created_ts.alias(CREATED_TS_COLUMN))
    for i, feature in enumerate(features):
        dtype = view.feature(feature).dtype
        source_type = source.column_type(view.source.source_column(feature))
        outputs.append(
            convert_value(F.col(f"__fs_val.__fs_f{i}"), dtype, source_type).alias(feature)
        )
    outputs += [F.col(_CANDIDATES), _not_sentinel(F.col(_MAX_CREATED)).alias(_MAX_CREATED)]
    return grouped.select(*outputs)


def _not_sentinel(column: Column) -> Column:
    return F.when(column != F.lit(NULL_CREATED), column)


class SparkLatestRows(LatestRows):
    """The persisted latest rows of one view, counted, then streamed a partition at a time."""

    def __init__(self, frame: DataFrame, key_names: tuple[str, ...], batch_rows: int) -> None:
        self._frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
        self._key_names = key_names
        self._batch_rows = batch_rows
        try:
            [row] = self._frame.agg(*self._counts()).collect()
        except PySparkException as exc:
            self.close()
            raise RetrievalError(f"computing the {self.what} on Spark failed: {exc}") from exc
        self.keys = int(row[0])
        self.rows_read = int(row[1])
        self.max_created_us = None if row[2] is None else int(row[2])

    #: What the rows are, for errors.
    what = "latest rows"

    def _counts(self) -> list[Column]:
        """The aggregates giving (keys, rows read, latest created time)."""
        return [
            F.count(F.lit(1)),
            F.coalesce(F.sum(_CANDIDATES), F.lit(0)),
            F.max(_MAX_CREATED),
        ]

    def _streamed(self) -> tuple[DataFrame, int]:
        """The frame handed to the driver, and its row count."""
        return self._frame.drop(_CANDIDATES, _MAX_CREATED), self.keys

    def _ordered(self, piece: DataFrame) -> DataFrame:
        """One partition's rows in the order they are handed over (any, for latest rows)."""
        return piece

    def batches(self) -> Iterator[pa.RecordBatch]:
        rows, count = self._streamed()
        parts = max(1, math.ceil(count / max(PART_ROWS, self._batch_rows)))
        if parts > 1 and self._key_names:
            hashed = F.pmod(F.xxhash64(*[F.col(k) for k in self._key_names]), F.lit(parts))
            rows = rows.withColumn(_PART, hashed)
            pieces = [rows.where(F.col(_PART) == p).drop(_PART) for p in range(parts)]
        else:
            pieces = [rows]
        try:
            for piece in pieces:
                table = self._ordered(piece).toArrow()
                yield from table.to_batches(max_chunksize=self._batch_rows)
        except PySparkException as exc:
            raise RetrievalError(f"streaming the {self.what} from Spark failed: {exc}") from exc

    def close(self) -> None:
        self._frame.unpersist()
