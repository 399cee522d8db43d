"""Windowed aggregations at each entity row's instant on Spark, with DataFrames.

The plan is every engine's (:mod:`featurestore.aggregations.plan`): per group of aggregations
sharing a window, the entity rows meet the partial aggregates of the tiles inside their window
(one ``groupBy`` of the events per key and tile) and the raw events of its two edge tiles (an
equi-join on the keys and the tile, then the exact bounds); the pieces are unioned and merged
per entity row. Functions that do not merge from partial results, and every function under
``filter_by_created_timestamp``, read the window's events through an equi-join on the keys
bounded by the window. Every join is an equi-join on the keys (and the tile), which Spark
shuffles by key; nothing is collected to the driver.

Spark's own estimators give the approximate functions: ``approx_count_distinct`` is
HyperLogLog++ at a relative standard deviation of 1% (:data:`HLL_RSD`), ``approx_percentile`` is
``percentile_approx`` (Greenwald-Khanna) at an accuracy of :data:`PERCENTILE_ACCURACY` (rank
error ``1 / accuracy``), well inside the bounds of :mod:`featurestore.aggregations.functions`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from featurestore.aggregations.functions import FUNCTIONS
from featurestore.aggregations.plan import (
    TWO_PASS,
    WindowGroup,
    aggregated_columns,
    piece_parts,
    scan_low_us,
    window_groups,
)
from featurestore.definitions.aggregation import Aggregation
from featurestore.offline.base import FeatureRequest
from featurestore.offline.entity_frame import ROW_ID
from featurestore.offline.spark.pit import ENTITY_TS
from featurestore.offline.spark.scan import SparkSourceFrame, source_scan
from featurestore.offline.spark.session import convert_value, spark_type
from featurestore.types import ValueType

#: ``approx_count_distinct``'s relative standard deviation (HyperLogLog++ with 2^14 registers).
HLL_RSD = 0.01
#: ``approx_percentile``'s accuracy: the returned value's rank is within ``1 / accuracy``.
PERCENTILE_ACCURACY = 10_000
_TILE = "__fs_tile"
_ORDER = "__fs_ord"


def aggregation_features(
    entity: DataFrame,
    source: SparkSourceFrame,
    request: FeatureRequest,
    *,
    min_ts_us: int | None,
    max_ts_us: int | None,
    filter_by_created_timestamp: bool,
) -> DataFrame:
    """``(ROW_ID, outputs...)`` of an aggregated view's requested features, for the entity rows
    of ``entity`` (as for :func:`~featurestore.offline.spark.pit.view_features`) that have a
    timestamp and every join key; the caller left-joins it back."""
    view = request.view
    by_created = filter_by_created_timestamp and view.source.created_timestamp_column is not None
    wanted = [view.aggregation_of[name] for name in request.features]
    columns = aggregated_columns(view, wanted)
    index = {name: i for i, name in enumerate(columns)}
    scan = source_scan(
        source,
        replace(request, features=tuple(columns), output_names=tuple(columns)),
        low_us=scan_low_us(view, wanted, min_ts_us),
        high_us=max_ts_us,
        require_created=by_created,
    )
    keys = tuple(f"__fs_k{i}" for i in range(len(view.join_keys)))
    tiled, raw = window_groups(wanted, by_created=by_created)
    present = F.col(ENTITY_TS).isNotNull()
    for key in keys:
        present &= F.col(key).isNotNull()
    plan = _Plan(
        rows=entity.where(present).select(ROW_ID, ENTITY_TS, *keys),
        events=_events(scan, source, columns, keys, sorted({g.width_us for g in tiled})),
        keys=keys,
        index=index,
        types=tuple(view.column(name).dtype for name in columns),
    )
    values = plan.rows.select(ROW_ID)
    for group in tiled:
        values = values.join(_tiled(plan, group), ROW_ID, "left")
    for group in raw:
        values = values.join(_raw(plan, group, by_created), ROW_ID, "left")
    outputs = [F.col(ROW_ID)]
    for i, (agg, output) in enumerate(zip(wanted, request.output_names, strict=True)):
        value = F.col(f"__fs_a{i}")
        if agg.empty is not None:
            value = F.coalesce(value, F.lit(agg.empty))
        outputs.append(value.cast(spark_type(view.feature(agg.name).dtype)).alias(output))
    return values.select(*outputs)


def floor_div(expression: str, divisor: int) -> Column:
    """The SQL integer ``expression`` divided by ``divisor``, rounded down (``div`` truncates
    toward zero, which would make tile 0 twice as wide for instants before 1970)."""
    return F.expr(f"(({expression}) - pmod({expression}, {divisor})) div {divisor}")


def _tile_column(width: int) -> str:
    return f"__fs_t{width}"


def _events(
    scan: DataFrame,
    source: SparkSourceFrame,
    columns: Sequence[str],
    keys: Sequence[str],
    widths: Sequence[int],
) -> DataFrame:
    """The scan's events: keys, event and created time, an order struct (event time, created
    time, file, position), the aggregated columns in their declared types as ``__fs_c{i}`` and
    each event's tile of every width; deduplicated by event id when the view declares one."""
    view = source.view
    has_created = view.source.created_timestamp_column is not None
    arrival = [*(["__fs_cts"] if has_created else []), "__fs_file", "__fs_pos"]
    if view.event_id is not None:
        event_id = F.col(f"__fs_f{columns.index(view.event_id)}")
        first_copy = F.row_number().over(Window.partitionBy(*keys, event_id).orderBy(*arrival))
        scan = (
            scan.withColumn("__fs_copy", first_copy)
            .where(event_id.isNull() | (F.col("__fs_copy") == 1))
            .drop("__fs_copy")
        )
    values = []
    for i, name in enumerate(columns):
        source_type = source.column_type(view.source.source_column(name))
        dtype = view.column(name).dtype
        values.append(convert_value(F.col(f"__fs_f{i}"), dtype, source_type).alias(f"__fs_c{i}"))
    created = [F.col("__fs_cts")] if has_created else []
    return scan.select(
        *keys,
        "__fs_ets",
        *created,
        F.struct("__fs_ets", *arrival).alias(_ORDER),
        *values,
        *[floor_div("__fs_ets", w).alias(_tile_column(w)) for w in widths],
    )


def _join(left: DataFrame, right: DataFrame, on: Sequence[str], where: Column) -> DataFrame:
    """An inner join on the equal columns ``on`` (none for a global view), filtered by ``where``."""
    joined = left.join(right, list(on), "inner") if on else left.crossJoin(right)
    return joined.where(where)


def _ordered_value(value: Column) -> Column:
    """The value with its event's order, for ``first`` / ``last`` (null for a null value)."""
    return F.when(value.isNotNull(), F.struct(F.col(_ORDER).alias("o"), value.alias("v")))


@dataclass(frozen=True)
class _Plan:
    """What every group of one view's aggregations reads: the entity rows (``ROW_ID``, the
    entity timestamp, the keys), the events of :func:`_events`, the key columns, and each
    aggregated column's index (``__fs_c{i}``) and declared type."""

    rows: DataFrame
    events: DataFrame
    keys: tuple[str, ...]
    index: dict[str, int]
    types: tuple[ValueType, ...]


def _tiled(plan: _Plan, group: WindowGroup) -> DataFrame:
    """The values ``__fs_a{i}`` of a group from tiles and edge events, per entity row."""
    width, window = group.width_us, group.window_us
    last_tile = floor_div(ENTITY_TS, width)
    first_tile = None if window is None else floor_div(f"{ENTITY_TS} - {window}", width)
    edge_tiles = (
        F.array(last_tile)
        if first_tile is None
        else F.array_distinct(F.array(first_tile, last_tile))
    )
    at_edges = plan.rows.select(ROW_ID, ENTITY_TS, *plan.keys, F.explode(edge_tiles).alias(_TILE))
    events = plan.events.withColumnRenamed(_tile_column(width), _TILE)
    in_window = F.col("__fs_ets") <= F.col(ENTITY_TS)
    if window is not None:
        in_window &= F.col("__fs_ets") > F.col(ENTITY_TS) - F.lit(window)
    edges = _join(at_edges, events, [*plan.keys, _TILE], in_window).select(
        ROW_ID, *_pieces(plan, group, tile=False)
    )
    if not group.has_interior:
        return _merge(edges, plan, group)
    tiles = events.groupBy(*plan.keys, _TILE).agg(*_pieces(plan, group, tile=True))
    if first_tile is None:  # lifetime: every tile before the entity row's own
        before = plan.rows.select(ROW_ID, *plan.keys, last_tile.alias("__fs_last"))
        inner = _join(before, tiles, plan.keys, F.col(_TILE) < F.col("__fs_last"))
    else:
        low, high = first_tile + 1, last_tile - 1
        inside = F.explode(F.when(low <= high, F.sequence(low, high))).alias(_TILE)
        inner = plan.rows.select(ROW_ID, *plan.keys, inside).join(tiles, [*plan.keys, _TILE])
    return _merge(edges.unionByName(inner.select(*edges.columns)), plan, group)


def _pieces(plan: _Plan, group: WindowGroup, *, tile: bool) -> list[Column]:
    """The partial results (:data:`~featurestore.aggregations.plan.PARTS`) of a piece, named
    ``__fs_{part}{column}``: over a tile's events (``tile``), else of one event."""
    out: list[Column] = []
    for c, parts in piece_parts(group, plan.index).items():
        v = F.col(f"__fs_c{c}")
        as_double = v.cast("double")
        sum_type = spark_type(FUNCTIONS["sum"].result(plan.types[c]))
        if tile:
            exprs = {
                "n": F.count(v),
                "s": F.sum(v).cast(sum_type),
                "lo": F.min(v),
                "hi": F.max(v),
                "mu": F.avg(as_double),
                "m2": F.var_pop(as_double) * F.count(v),
                "first": F.min(_ordered_value(v)),
                "last": F.max(_ordered_value(v)),
            }
        else:
            exprs = {
                "n": v.isNotNull().cast("bigint"),
                "s": v.cast(sum_type),
                "lo": v,
                "hi": v,
                "mu": as_double,
                "m2": F.when(v.isNotNull(), F.lit(0.0)),
                "first": _ordered_value(v),
                "last": _ordered_value(v),
            }
        out.extend(exprs[p].alias(f"__fs_{p}{c}") for p in sorted(parts))
    return out


def _merge(pieces: DataFrame, plan: _Plan, group: WindowGroup) -> DataFrame:
    """Merge the ``pieces`` per entity row into the group's values ``__fs_a{i}``; the variance
    takes a second pass, over each piece's deviation from the window's mean."""
    two_pass = sorted(
        {plan.index[a.column] for _, a in group.aggregations if a.function in TWO_PASS}
    )
    per_row = Window.partitionBy(ROW_ID)
    pieces = pieces.select(
        "*",
        *[
            _ratio(F.sum(f"__fs_s{c}").over(per_row), F.sum(f"__fs_n{c}").over(per_row)).alias(
                f"__fs_wmean{c}"
            )
            for c in two_pass
        ],
    )
    values = []
    for i, agg in group.aggregations:
        c = plan.index[agg.column]
        values.append(_merged_value(agg.function, c).alias(f"__fs_a{i}"))
    return pieces.groupBy(ROW_ID).agg(*values)


def _ratio(numerator: Column, count: Column) -> Column:
    """``numerator / count`` as a double, null for a zero count (no division error under ANSI)."""
    return F.when(count > 0, numerator.cast("double") / count)


def _merged_value(function: str, c: int) -> Column:
    n = F.sum(f"__fs_n{c}")
    if function == "count":
        return n
    if function in ("sum", "mean"):
        total = F.sum(f"__fs_s{c}")
        return F.when(n > 0, total) if function == "sum" else _ratio(total, n)
    if function in ("min", "max"):
        return F.min(f"__fs_lo{c}") if function == "min" else F.max(f"__fs_hi{c}")
    if function in ("first", "last"):
        ordered = F.min(f"__fs_first{c}") if function == "first" else F.max(f"__fs_last{c}")
        return ordered.getField("v")
    # var, stddev: Chan et al.'s merge of the pieces' means and squared deviations.
    spread = F.col(f"__fs_mu{c}") - F.col(f"__fs_wmean{c}")
    deviation = F.coalesce(F.col(f"__fs_m2{c}"), F.lit(0.0)) + F.col(f"__fs_n{c}") * spread * spread
    variance = F.when(n > 1, F.sum(deviation) / (n - 1))
    return variance if function == "var" else F.sqrt(variance)


def _raw(plan: _Plan, group: WindowGroup, by_created: bool) -> DataFrame:
    """The values ``__fs_a{i}`` of a group from the window's raw events, per entity row."""
    t = F.col(ENTITY_TS)
    in_window = F.col("__fs_ets") <= t
    if group.window_us is not None:
        in_window &= F.col("__fs_ets") > t - F.lit(group.window_us)
    if by_created:
        in_window &= F.col("__fs_cts") <= t
    values = [
        _RAW[agg.function](F.col(f"__fs_c{plan.index[agg.column]}"), agg).alias(f"__fs_a{i}")
        for i, agg in group.aggregations
    ]
    return _join(plan.rows, plan.events, plan.keys, in_window).groupBy(ROW_ID).agg(*values)


def _last_k(v: Column, agg: Aggregation) -> Column:
    newest_first = F.sort_array(F.collect_list(_ordered_value(v)), asc=False)
    values = F.slice(F.transform(newest_first, lambda item: item.getField("v")), 1, agg.k)
    return F.when(F.size(values) > 0, values)


#: Each function over the raw events of a window (``v``: the column, nulls included).
_RAW: dict[str, Callable[[Column, Aggregation], Column]] = {
    "count": lambda v, _: F.count(v),
    "sum": lambda v, _: F.sum(v),
    "mean": lambda v, _: F.avg(v.cast("double")),
    "min": lambda v, _: F.min(v),
    "max": lambda v, _: F.max(v),
    "var": lambda v, _: F.var_samp(v.cast("double")),
    "stddev": lambda v, _: F.stddev_samp(v.cast("double")),
    "first": lambda v, _: F.min(_ordered_value(v)).getField("v"),
    "last": lambda v, _: F.max(_ordered_value(v)).getField("v"),
    "count_distinct": lambda v, _: F.count_distinct(v),
    "approx_count_distinct": lambda v, _: F.approx_count_distinct(v, rsd=HLL_RSD),
    "approx_percentile": lambda v, agg: F.percentile_approx(
        v.cast("double"), agg.percentile, PERCENTILE_ACCURACY
    ),
    "last_k": _last_k,
}
