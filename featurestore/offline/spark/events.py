"""Every event of an aggregated view in a time range on Spark, grouped by entity key: what
materialization folds into each key's online aggregation state (as DuckDB's
:mod:`featurestore.offline.duckdb.events_sql`).

With an event id, only the first copy of each event to arrive is an event, found among every
copy in the source whatever its time (:func:`~.scan.first_copies`, as retrieval counts it); the
range is applied after. ``__fs_seq`` numbers the events in file order from 1: each file's events
by position, offset by the events of the files before it (a per-file count, tiny), so no window
spans the whole source. The events are persisted, counted, then handed to the driver one hash
partition of keys at a time (:class:`~.latest.SparkLatestRows`), each sorted by key, event
time, created time and file order.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from featurestore.definitions.feature_view import FeatureView
from featurestore.offline.base import FeatureRequest
from featurestore.offline.spark.latest import CREATED_TS_COLUMN as CREATED_TS
from featurestore.offline.spark.latest import EVENT_TS_COLUMN as EVENT_TS
from featurestore.offline.spark.latest import SparkLatestRows
from featurestore.offline.spark.scan import (
    FILE_ORDER,
    NULL_CREATED,
    SparkSourceFrame,
    first_copies,
    source_scan,
)
from featurestore.offline.spark.session import convert_value, spark_type

#: The events' order among equal times (file order), as the online state keeps it.
SEQ = "__fs_seq"


def events_frame(
    source: SparkSourceFrame, after_us: int | None, end_us: int, not_before_us: int | None
) -> DataFrame:
    """Events with ``after_us < event_ts <= end_us`` (no lower bound for None): the join keys
    (declared types), :data:`EVENT_TS`, :data:`CREATED_TS` (epoch µs; a null created time is
    the smallest), :data:`SEQ` and the view's columns (declared types); unordered."""
    view = source.view
    columns = tuple(c.name for c in view.columns)
    request = FeatureRequest(view, columns, columns, not_before_us=not_before_us)
    keys = [f"__fs_k{i}" for i in range(len(view.join_keys))]
    in_range = F.col("__fs_ets") <= F.lit(int(end_us))
    if after_us is not None:
        in_range &= F.col("__fs_ets") > F.lit(int(after_us))
    if view.event_id is None:
        scan = source_scan(source, request, low_us=after_us, high_us=end_us)
    else:  # the first copy is searched among every copy, whatever its time
        scan = source_scan(source, request)
        scan = first_copies(scan, source, keys, f"__fs_f{columns.index(view.event_id)}")
    events = _numbered(scan.where(in_range))
    outputs: list[Column] = []
    for i, (key, dtype) in enumerate(view.join_key_types.items()):
        column = F.col(f"__fs_k{i}")
        outputs.append((column if dtype is None else column.cast(spark_type(dtype))).alias(key))
    has_created = view.source.created_timestamp_column is not None
    created = F.col("__fs_cts") if has_created else F.lit(NULL_CREATED)
    outputs += [
        F.col("__fs_ets").alias(EVENT_TS),
        created.cast("bigint").alias(CREATED_TS),
        F.col(SEQ),
    ]
    for i, field in enumerate(view.columns):
        source_type = source.column_type(view.source.source_column(field.name))
        value = convert_value(F.col(f"__fs_f{i}"), field.dtype, source_type)
        outputs.append(value.alias(field.name))
    return events.select(*outputs)


def _numbered(events: DataFrame) -> DataFrame:
    """``events`` with :data:`SEQ`: the row number in file order (:data:`~.scan.FILE_ORDER`:
    the file's index in the view's file list, then the position), from 1."""
    file, position = FILE_ORDER
    before = Window.orderBy(file).rowsBetween(Window.unboundedPreceding, -1)
    offsets = (
        events.groupBy(file)
        .count()
        .select(file, F.coalesce(F.sum("count").over(before), F.lit(0)).alias("__fs_off"))
    )
    in_file = F.row_number().over(Window.partitionBy(file).orderBy(position))
    return (
        events.join(F.broadcast(offsets), file)
        .withColumn(SEQ, (F.col("__fs_off") + in_file).cast("bigint"))
        .drop("__fs_off")
    )


class SparkEventRows(SparkLatestRows):
    """The persisted events of one view, counted (rows, distinct keys), then streamed a hash
    partition of keys at a time, each in (key, event time, created time, file order) order."""

    what = "events"

    def __init__(self, frame: DataFrame, view: FeatureView, batch_rows: int) -> None:
        self._order = [*view.join_keys, EVENT_TS, CREATED_TS, SEQ]
        super().__init__(frame, tuple(view.join_keys), batch_rows)

    def _counts(self) -> list[Column]:
        keys = self._key_names
        distinct = (
            F.count_distinct(*[F.col(k) for k in keys])
            if keys
            else F.least(F.count(F.lit(1)), F.lit(1))
        )
        return [distinct, F.count(F.lit(1)), F.lit(None).cast("bigint")]

    def _streamed(self) -> tuple[DataFrame, int]:
        return self._frame, self.rows_read

    def _ordered(self, piece: DataFrame) -> DataFrame:
        return piece.orderBy(*self._order)
