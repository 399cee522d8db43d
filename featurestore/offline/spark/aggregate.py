"""Windowed aggregations at each entity row's instant on Spark, with DataFrames.

The plan is every engine's (:mod:`featurestore.aggregations.plan`: tile partial aggregates for a
window's interior, raw events for its two edge tiles), laid out so that all the windows of a
view share each step, which keeps Spark's plan small whatever the number of aggregations:

* every event is listed once per tile width in use, with its tile of that width;
* each entity row lists the ``(window, width, tile)`` pieces it reads: the edge tiles of every
  window, then the tiles inside each window;
* one equi-join on ``(keys, width, tile)`` brings the edge events (filtered by each window's
  exact bounds), one ``groupBy`` of the events by ``(keys, width, tile)`` makes the tile partial
  aggregates, one equi-join brings the interior tiles (a lifetime window joins the key's
  earlier tiles instead);
* one ``groupBy`` per entity row merges the pieces, each value over its own window's pieces.

Functions that do not merge from partial results, and every function under
``filter_by_created_timestamp``, read raw events: one equi-join of each entity row to its key's
events of the longest such window, each function over its own window's events. Spark shuffles
by key; nothing is collected to the driver.

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

#: ``approx_count_distinct``'s relative standard deviation (HyperLogLog++ with 2^14 registers).
HLL_RSD = 0.01
#: ``approx_percentile``'s accuracy: the returned value's rank is within ``1 / accuracy``.
PERCENTILE_ACCURACY = 10_000
_ORDER = "__fs_ord"
_TILE_PREFIX = "__fs_t_"
_TILE = "__fs_tile"
_WIDTH = "__fs_width"
_GROUP = "__fs_group"
_LOW = "__fs_low"


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
    )
    values = plan.rows.select(ROW_ID)
    if tiled:
        values = values.join(_tiled(plan, tiled), ROW_ID, "left")
    if raw:
        values = values.join(_raw(plan, raw, by_created), ROW_ID, "left")
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
    return f"{_TILE_PREFIX}{width}"


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
    """What the aggregations of one view read: the entity rows (``ROW_ID``, the entity
    timestamp, the keys), the events of :func:`_events`, the key columns, and each aggregated
    column's index (``__fs_c{i}``)."""

    rows: DataFrame
    events: DataFrame
    keys: tuple[str, ...]
    index: dict[str, int]


def _piece_request(group: int, width: int, tile: Column, low: Column | None = None) -> Column:
    """One (group, tile width, tile[, lower bound]) an entity row reads, as a struct."""
    fields = [
        F.lit(group).cast("int").alias(_GROUP),
        F.lit(width).cast("bigint").alias(_WIDTH),
        tile.alias(_TILE),
    ]
    if low is not None:
        fields.append(low.cast("bigint").alias(_LOW))
    return F.struct(*fields)


def _requests_of(group: int, width: int) -> Callable[[Column], Column]:
    """A tile's :func:`_piece_request` of ``group``, for ``transform``."""
    return lambda tile: _piece_request(group, width, tile)


def _tiled(plan: _Plan, groups: Sequence[WindowGroup]) -> DataFrame:
    """The values ``__fs_a{i}`` of every tiled group, per entity row: one join for the edge
    events of every group, one ``groupBy`` for the tiles of every width, one join (plus one for
    a lifetime window) for the interior tiles, one merge."""
    t = F.col(ENTITY_TS)
    edge_requests: list[Column] = []
    inner_requests: list[Column] = []
    lifetime: int | None = None
    for g, group in enumerate(groups):
        width, window = group.width_us, group.window_us
        last = floor_div(ENTITY_TS, width)
        if window is None:
            lifetime = g
            edge_requests.append(_piece_request(g, width, last, F.lit(None)))
            continue
        first = floor_div(f"{ENTITY_TS} - {window}", width)
        for tile in (first, last):
            edge_requests.append(_piece_request(g, width, tile, t - F.lit(window)))
        if group.has_interior:
            inside = F.when(first + 1 <= last - 1, F.sequence(first + 1, last - 1))
            inside_tiles = F.coalesce(inside, F.array().cast("array<bigint>"))
            inner_requests.append(F.transform(inside_tiles, _requests_of(g, width)))
    widths = sorted({group.width_us for group in groups})
    tiles_of_event = F.array(
        *[F.struct(F.lit(w).alias(_WIDTH), F.col(_tile_column(w)).alias(_TILE)) for w in widths]
    )
    plain = [c for c in plan.events.columns if not c.startswith(_TILE_PREFIX)]
    events = plan.events.select(*plain, F.inline(tiles_of_event))
    parts = piece_parts((agg for group in groups for _, agg in group.aggregations), plan.index)
    at_edges = plan.rows.select(
        ROW_ID, ENTITY_TS, *plan.keys, F.inline(F.array_distinct(F.array(*edge_requests)))
    )
    in_window = (F.col("__fs_ets") <= t) & (
        F.col(_LOW).isNull() | (F.col("__fs_ets") > F.col(_LOW))
    )
    pieces = _join(at_edges, events, [*plan.keys, _WIDTH, _TILE], in_window).select(
        ROW_ID, _GROUP, *_pieces(parts, tile=False)
    )
    if inner_requests or lifetime is not None:
        tiles = events.groupBy(*plan.keys, _WIDTH, _TILE).agg(*_pieces(parts, tile=True))
        if inner_requests:
            wanted = plan.rows.select(
                ROW_ID, *plan.keys, F.inline(F.flatten(F.array(*inner_requests)))
            )
            inner = wanted.join(tiles, [*plan.keys, _WIDTH, _TILE])
            pieces = pieces.unionByName(inner.select(*pieces.columns))
        if lifetime is not None:  # every whole tile before the entity row's own
            width = groups[lifetime].width_us
            before = plan.rows.select(
                ROW_ID,
                *plan.keys,
                F.lit(lifetime).cast("int").alias(_GROUP),
                floor_div(ENTITY_TS, width).alias("__fs_last"),
            )
            earlier = (F.col(_WIDTH) == F.lit(width)) & (F.col(_TILE) < F.col("__fs_last"))
            inner = _join(before, tiles, plan.keys, earlier)
            pieces = pieces.unionByName(inner.select(*pieces.columns))
    return _merge(pieces, plan, groups)


def _pieces(parts: dict[int, set[str]], *, tile: bool) -> list[Column]:
    """The partial results (:data:`~featurestore.aggregations.plan.PARTS`) of a piece, named
    ``__fs_{part}{column}``: over a tile's events (``tile``), else of one event."""
    out: list[Column] = []
    for c, needed in parts.items():
        v = F.col(f"__fs_c{c}")
        as_double = v.cast("double")
        if tile:
            exprs = {
                "n": F.count(v),
                "s": F.sum(v),
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
                "s": v,
                "lo": v,
                "hi": v,
                "mu": as_double,
                "m2": F.when(v.isNotNull(), F.lit(0.0)),
                "first": _ordered_value(v),
                "last": _ordered_value(v),
            }
        out.extend(exprs[p].alias(f"__fs_{p}{c}") for p in sorted(needed))
    return out


def _merge(pieces: DataFrame, plan: _Plan, groups: Sequence[WindowGroup]) -> DataFrame:
    """Merge the ``pieces`` (``ROW_ID``, group, partial results) per entity row into every
    group's values ``__fs_a{i}``; the variance takes a second pass, over each piece's deviation
    from the mean of its group's window."""
    two_pass = sorted(
        {plan.index[a.column] for g in groups for _, a in g.aggregations if a.function in TWO_PASS}
    )
    per_window = Window.partitionBy(ROW_ID, _GROUP)
    means = [
        _ratio(F.sum(f"__fs_s{c}").over(per_window), F.sum(f"__fs_n{c}").over(per_window)).alias(
            f"__fs_wmean{c}"
        )
        for c in two_pass
    ]
    values = []
    for g, group in enumerate(groups):
        for i, agg in group.aggregations:
            value = _merged_value(agg.function, plan.index[agg.column], F.col(_GROUP) == g)
            values.append(value.alias(f"__fs_a{i}"))
    return pieces.select("*", *means).groupBy(ROW_ID).agg(*values)


def _ratio(numerator: Column, count: Column) -> Column:
    """``numerator / count`` as a double, null for a zero count (no division error under ANSI)."""
    return F.when(count > 0, numerator.cast("double") / count)


def _merged_value(function: str, c: int, mine: Column) -> Column:
    """One function's value over the pieces of its group (``mine``)."""

    def part(name: str) -> Column:
        return F.when(mine, F.col(f"__fs_{name}{c}"))

    n = F.sum(part("n"))
    if function == "count":
        return n
    if function in ("sum", "mean"):
        total = F.sum(part("s"))
        return F.when(n > 0, total) if function == "sum" else _ratio(total, n)
    if function in ("min", "max"):
        return F.min(part("lo")) if function == "min" else F.max(part("hi"))
    if function in ("first", "last"):
        ordered = F.min(part("first")) if function == "first" else F.max(part("last"))
        return ordered.getField("v")
    # var, stddev: Chan et al.'s merge of the pieces' means and squared deviations.
    spread = part("mu") - F.col(f"__fs_wmean{c}")
    deviation = F.coalesce(part("m2"), F.lit(0.0)) + part("n") * spread * spread
    variance = F.when(n > 1, F.sum(deviation) / (n - 1))
    return variance if function == "var" else F.sqrt(variance)


def _raw(plan: _Plan, groups: Sequence[WindowGroup], by_created: bool) -> DataFrame:
    """The values ``__fs_a{i}`` of every raw group, per entity row: one join of the entity rows
    to the events of their longest window, each function over its own window's events."""
    t = F.col(ENTITY_TS)
    reach = F.col("__fs_ets") <= t
    windows = [group.window_us for group in groups]
    if None not in windows:
        reach &= F.col("__fs_ets") > t - F.lit(max(w for w in windows if w is not None))
    if by_created:
        reach &= F.col("__fs_cts") <= t
    values = []
    for group in groups:
        window = group.window_us
        for i, agg in group.aggregations:
            v = F.col(f"__fs_c{plan.index[agg.column]}")
            if window is not None:
                v = F.when(F.col("__fs_ets") > t - F.lit(window), v)
            values.append(_RAW[agg.function](v, agg).alias(f"__fs_a{i}"))
    return _join(plan.rows, plan.events, plan.keys, reach).groupBy(ROW_ID).agg(*values)


def _last_k(v: Column, agg: Aggregation) -> Column:
    newest_first = F.sort_array(F.collect_list(_ordered_value(v)), asc=False)
    values = F.slice(F.transform(newest_first, lambda item: item.getField("v")), 1, agg.k)
    return F.when(F.size(values) > 0, values)


#: Each function over the raw events of a window (``v``: the column, null outside the window).
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
    # size(collect_set): count(DISTINCT) of several conditional columns would expand the rows.
    "count_distinct": lambda v, _: F.size(F.collect_set(v)),
    "approx_count_distinct": lambda v, _: F.approx_count_distinct(v, rsd=HLL_RSD),
    "approx_percentile": lambda v, agg: F.percentile_approx(
        v.cast("double"), agg.percentile, PERCENTILE_ACCURACY
    ),
    "last_k": _last_k,
}
