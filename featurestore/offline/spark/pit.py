"""The point-in-time join on Spark: a union of entity rows and source rows, then one window.

For each view, entity rows (keys, their timestamp) and candidate source rows (keys, event time)
are unioned and ordered per join-key tuple by instant, source rows before entity rows at an equal
instant (``event_ts <= ts`` is inclusive). A running ``max`` over the window of the struct
``(event_ts, created_ts, file, position, values...)`` gives every entity row the best source row
at or before its instant: latest event time, then latest created time (a null created time loses),
then last in file order, exactly the design's winner. Because event time leads the ordering, the
best row is also the only one the TTL needs to look at: if it is older than ``ts - ttl`` every
candidate is, and the entity row gets nulls. Spark sorts each key's rows once (spilling to disk
when needed); nothing is collected to the driver.

``filter_by_created_timestamp`` makes a row a candidate only once it exists (created timestamp
non-null and ``<= ts``): source rows then enter the window at their *availability*,
``greatest(event_ts, created_ts)``, and the running best among available rows is the winner (its
event time still decides the TTL). Views whose source has no created column are unaffected.
"""

from __future__ import annotations

from datetime import timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from featurestore.offline.base import FeatureRequest
from featurestore.offline.entity_frame import ROW_ID
from featurestore.offline.spark.scan import FILE_ORDER, SparkSourceFrame, source_scan
from featurestore.offline.spark.session import convert_value

#: Column of the entity keys frame: the entity timestamp in epoch µs (UTC).
ENTITY_TS = "__fs_ts"
_INSTANT = "__fs_t"
_SIDE = "__fs_side"  # 0: source row, 1: entity row (sorts after a source row at equal instants)
_VALUE = "__fs_val"


def ordered_values(request: FeatureRequest) -> Column:
    """The winner's ordering and the values, as one struct whose ``max`` is the winner."""
    fields = ["__fs_ets"]
    if request.view.source.created_timestamp_column is not None:
        fields.append("__fs_cts")
    fields += FILE_ORDER
    fields += [f"__fs_f{i}" for i in range(len(request.features))]
    return F.struct(*[F.col(name) for name in fields])


def view_features(
    entity: DataFrame,
    source: SparkSourceFrame,
    request: FeatureRequest,
    *,
    min_ts_us: int | None,
    max_ts_us: int | None,
    filter_by_created_timestamp: bool,
) -> DataFrame:
    """``(ROW_ID, outputs...)`` of one view for the entity rows of ``entity`` (columns
    ``ROW_ID``, :data:`ENTITY_TS` and the join keys, cast for comparison, as ``__fs_k{i}``) that
    have a timestamp and non-null keys; the caller left-joins it back."""
    view = request.view
    by_created = filter_by_created_timestamp and view.source.created_timestamp_column is not None
    ttl_us = None if view.ttl is None else view.ttl // timedelta(microseconds=1)
    low_us = None if ttl_us is None or min_ts_us is None else min_ts_us - ttl_us
    scan = source_scan(
        source, request, low_us=low_us, high_us=max_ts_us, require_created=by_created
    )
    keys = [f"__fs_k{i}" for i in range(len(view.join_keys))]
    value = ordered_values(request)
    instant = F.greatest("__fs_ets", "__fs_cts") if by_created else F.col("__fs_ets")
    sources = scan.select(
        *keys,
        instant.alias(_INSTANT),
        F.lit(0).alias(_SIDE),
        F.lit(None).cast("bigint").alias(ROW_ID),
        value.alias(_VALUE),
    )
    value_type = sources.schema[_VALUE].dataType
    assert isinstance(value_type, StructType)
    present = F.col(ENTITY_TS).isNotNull()
    for key in keys:
        present &= F.col(key).isNotNull()
    entities = entity.where(present).select(
        *keys,
        F.col(ENTITY_TS).alias(_INSTANT),
        F.lit(1).alias(_SIDE),
        F.col(ROW_ID),
        F.lit(None).cast(value_type).alias(_VALUE),
    )
    window = (
        Window.partitionBy(*keys)
        .orderBy(_INSTANT, _SIDE)
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    best = F.max(_VALUE).over(window)
    matched = (
        sources.unionByName(entities)
        .select(ROW_ID, _SIDE, _INSTANT, best.alias(_VALUE))
        .where(F.col(_SIDE) == 1)
    )
    valid = F.col(f"{_VALUE}.__fs_ets").isNotNull()
    if ttl_us is not None:
        valid &= F.col(f"{_VALUE}.__fs_ets") >= F.col(_INSTANT) - F.lit(ttl_us)
    outputs = [F.col(ROW_ID)]
    for i, (feature, output) in enumerate(zip(request.features, request.output_names, strict=True)):
        dtype = view.feature(feature).dtype
        source_type = source.column_type(view.source.source_column(feature))
        converted = convert_value(F.col(f"{_VALUE}.__fs_f{i}"), dtype, source_type)
        outputs.append(F.when(valid, converted).alias(output))
    return matched.select(*outputs)
