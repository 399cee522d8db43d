"""Windowed aggregations at each entity row's instant, as DuckDB SQL (built like ``pit_sql``).

For an entity row ``(keys, t)`` and an aggregation over window ``W``, the value is the function
over the source rows with the same keys and ``t - W < event_ts <= t`` (``event_ts <= t`` for a
lifetime window), null inputs skipped (see :mod:`featurestore.aggregations.functions`).

The plan never joins every event of a key to every entity row of that key. Time is cut into
*tiles* of width ``T``, the widest of the windows' tiles (:func:`tile_us`: ``W`` itself up to a
day, one day beyond and for lifetime windows; tile ``i`` holds ``i*T <= event_ts < (i+1)*T``).
All the windows of a view are computed together, from one set of *pieces* per entity row:

* **edges**: the raw events of the tile of ``t`` (up to ``t``) and of each window's first tile,
  the tile of ``t - W``, found by one hash join of the events on ``(keys, tile)``; each event is
  a piece stamped with its own time;
* **interior**: every other tile between the widest window's first tile and the tile of ``t``
  (every earlier tile for a lifetime window), read as *partial aggregates* per key and tile
  (count, sum, min, max, per-tile mean and squared deviations, first and last by order) computed
  once from the events; each is a piece stamped with the start of its tile.

A piece belongs to window ``W`` when its stamp is after ``t - W``: an edge event then lies in the
window, and an interior tile starting after ``t - W`` lies in it whole (a tile starting at or
before ``t - W`` is the window's first tile, an edge, or lies before it). One ``GROUP BY`` per
entity row merges each window's pieces with ``FILTER`` clauses: counts and sums add (a sum is the
sum of exactly the window's values, grouped by tile, never a difference of running sums, so
small values beside huge ones keep their precision), min and max combine, ``first`` / ``last``
take the least / greatest ``(event time, created time, file, position)``, and the sample variance
merges the pieces' means and squared deviations in two passes (Chan et al.: the window's mean
first, then each piece's deviations from it), which stays accurate when the values are large
and their spread small.

Functions whose partial results do not merge (``count_distinct``, ``approx_count_distinct``,
``approx_percentile``, ``last_k``) read the window's raw events, joined on the keys and bounded by
the window, and so does every aggregation under ``filter_by_created_timestamp`` (which keeps an
event only once created, a condition the tiles do not know). Rows sharing the keys and a
non-null ``event_id`` count once: the first by created time, then file order.

Cost (``bench/aggregations.py``, figures in ``bench/README.md``): per entity row, the events of
about two tiles per distinct window start plus one partial row per interior tile; the events are
read twice (edges, tile partials), re-read from Parquet rather than materialized, which measured
cheaper. Sorting plans measured slower on DuckDB: window frames over events and entity rows
together (``RANGE BETWEEN W - 1 PRECEDING AND CURRENT ROW``; exact, but DuckDB evaluates a frame
for every event row too, ~5-8x slower than the range join), and running sums per key found by
ASOF joins (the sort of the events alone costs about what the range join does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from featurestore.definitions.aggregation import Aggregation
from featurestore.offline.duckdb.pit_sql import (
    ENTITY_TS,
    ROW_ID,
    EntityRelation,
    ViewSource,
    convert_value,
    entity_keys,
    order_struct,
    source_scan,
    view_ctes,
)

#: Functions computed from tile partial aggregates; the others read the window's raw events.
TILED = frozenset({"count", "sum", "mean", "min", "max", "stddev", "var", "first", "last"})
#: Functions that need each event's order (event time, created time, file, position).
_ORDERED = frozenset({"first", "last", "last_k"})
_DAY_US = 86_400_000_000


def tile_us(window_us: int | None) -> int:
    """The tile width of a window (µs): the window itself up to a day, else one day."""
    return _DAY_US if window_us is None else min(window_us, _DAY_US)


@dataclass(frozen=True)
class _Group:
    """Aggregations read from raw events, sharing one window."""

    window_us: int | None
    aggregations: tuple[tuple[int, Aggregation], ...]  # (request index, aggregation)


@dataclass(frozen=True)
class _Width:
    """Tiled aggregations whose windows share one tile width, merged from the same pieces."""

    width_us: int
    aggregations: tuple[tuple[int, Aggregation], ...]  # (request index, aggregation)

    @property
    def sliding(self) -> list[int]:
        """The distinct windows of the aggregations other than lifetime ones."""
        return sorted({a.window_us for _, a in self.aggregations if a.window_us is not None})

    @property
    def lifetime(self) -> bool:
        """Whether an aggregation has a lifetime window."""
        return any(a.window_us is None for _, a in self.aggregations)


def retrieval_ctes(
    prefix: str,
    entity: EntityRelation,
    source: ViewSource,
    *,
    filter_by_created_timestamp: bool = False,
) -> list[str]:
    """One view's retrieval CTEs: the aggregations of an aggregated view, else the
    point-in-time join of :func:`~featurestore.offline.duckdb.pit_sql.view_ctes`."""
    view = source.request.view
    if not view.is_aggregated:
        return view_ctes(
            prefix, entity, source, filter_by_created_timestamp=filter_by_created_timestamp
        )
    by_created = filter_by_created_timestamp and view.source.created_timestamp_column is not None
    return aggregation_ctes(prefix, entity, source, by_created=by_created)


def aggregation_ctes(
    prefix: str, entity: EntityRelation, source: ViewSource, *, by_created: bool
) -> list[str]:
    """CTEs ending in ``prefix`` with ``(ROW_ID, __fs_val)``, ``__fs_val`` a struct of the
    requested aggregations' values as ``__fs_f{i}`` (request order), like ``pit_sql``'s."""
    view = source.request.view
    wanted = [view.aggregation_of[name] for name in source.request.features]
    columns = sorted({agg.column for agg in wanted} | ({view.event_id} if view.event_id else set()))
    column_index = {name: i for i, name in enumerate(columns)}
    tiled, raw = _groups(wanted, by_created)
    # The created time filter of the raw path reads the order struct too.
    ordered = by_created or any(agg.function in _ORDERED for agg in wanted)
    events = _events(prefix, source, columns, column_index, [w.width_us for w in tiled], ordered)
    # Read again by each join rather than kept, unless deduplication (a window) made them.
    kept = "" if view.event_id else " NOT MATERIALIZED"
    ctes = [
        f"{prefix}_src AS{kept} (\n{_scan(source, columns, entity, wanted, by_created)}\n)",
        f"{prefix}_ev AS{kept} (\n{events}\n)",
        f"{prefix}_ent AS (\n{entity_keys(entity, source, None)}\n)",
    ]
    keys = [f"__fs_k{i}" for i in range(len(view.join_keys))]
    outputs: list[tuple[str, tuple[tuple[int, Aggregation], ...]]] = []
    for g, width in enumerate(tiled):
        name = f"{prefix}_w{g}"
        ctes.extend(_width_ctes(name, prefix, keys, width, column_index))
        outputs.append((name, width.aggregations))
    for g, group in enumerate(raw):
        name = f"{prefix}_r{g}"
        ctes.append(_raw_cte(name, prefix, keys, group, column_index, by_created=by_created))
        outputs.append((name, group.aggregations))
    fields = []
    for index, agg in enumerate(wanted):
        owner = next(out for out, aggs in outputs if any(i == index for i, _ in aggs))
        value = f"{owner}.__fs_a{index}"
        if agg.empty is not None:
            value = f"coalesce({value}, {agg.empty})"
        fields.append(f"__fs_f{index} := {value}")
    joins = "".join(f"\n  LEFT JOIN {out} ON {out}.{ROW_ID} = e.{ROW_ID}" for out, _ in outputs)
    ctes.append(
        f"{prefix} AS (\n  SELECT e.{ROW_ID}, struct_pack({', '.join(fields)}) AS __fs_val\n"
        f"  FROM {prefix}_ent AS e{joins}\n)"
    )
    return ctes


def _groups(wanted: Sequence[Aggregation], by_created: bool) -> tuple[list[_Width], list[_Group]]:
    """The tiled aggregations, all at the widest tile width any of their windows takes (one
    pass over the events for every window: a narrower window just has no interior), and the
    raw ones by window."""
    tiled: list[tuple[int, Aggregation]] = []
    raw: dict[int | None, list[tuple[int, Aggregation]]] = {}
    for index, agg in enumerate(wanted):
        if agg.function in TILED and not by_created:
            tiled.append((index, agg))
        else:
            raw.setdefault(agg.window_us, []).append((index, agg))
    widths = [_Width(max(tile_us(a.window_us) for _, a in tiled), tuple(tiled))] if tiled else []
    return widths, [_Group(w, tuple(a)) for w, a in raw.items()]


def _scan(
    source: ViewSource,
    columns: Sequence[str],
    entity: EntityRelation,
    wanted: Sequence[Aggregation],
    by_created: bool,
) -> str:
    """The source scan (keys, times, order, the aggregated columns as ``__fs_f{i}``), pruned to
    the longest window before the earliest entity row."""
    request = replace(source.request, features=tuple(columns), output_names=tuple(columns))
    windows = [agg.window_us for agg in wanted]
    low = None
    # Deduplication by event id must see every copy of an event, so it prunes nothing.
    if (
        entity.min_ts_us is not None
        and None not in windows
        and source.request.view.event_id is None
    ):
        low = entity.min_ts_us - max(w for w in windows if w is not None)
    return source_scan(
        replace(source, request=request),
        low_us=low,
        high_us=entity.max_ts_us,
        require_created=by_created,
    )


def _events(
    prefix: str,
    source: ViewSource,
    columns: Sequence[str],
    index: dict[str, int],
    widths: Sequence[int],
    ordered: bool,
) -> str:
    """Events with their values cast to the declared types, their tile of each width and (when
    ``ordered``) an order struct; deduplicated by event id when the view declares one."""
    view = source.request.view
    keys = [f"s.__fs_k{i}" for i in range(len(view.join_keys))]
    values = []
    for i, name in enumerate(columns):
        dtype = view.column(name).dtype
        column_type = source.column_types.get(view.source.source_column(name), "")
        values.append(f"{convert_value(f's.__fs_f{i}', dtype, column_type)} AS __fs_c{i}")
    values.extend(f"{floor_div('s.__fs_ets', w)} AS {tile_column(w)}" for w in widths)
    if ordered:
        values.append(f"{order_struct(source, 's', with_event_ts=True)} AS __fs_ord")
    select = f"  SELECT {', '.join([*keys, 's.__fs_ets', *values])}\n  FROM {prefix}_src AS s"
    if view.event_id is None:
        return select
    event_id = f"s.__fs_f{index[view.event_id]}"
    arrival = order_struct(source, "s", with_event_ts=False)
    partition = ", ".join([*keys, event_id])
    return (
        f"{select}\n  QUALIFY {event_id} IS NULL OR row_number() OVER "
        f"(PARTITION BY {partition} ORDER BY {arrival}) = 1"
    )


def floor_div(expression: str, divisor: int) -> str:
    """Integer floor division (``//`` truncates toward zero, which would make tile 0 twice as
    wide for instants before 1970)."""
    return (
        f"(CASE WHEN ({expression}) >= 0 THEN ({expression}) // {divisor} "
        f"ELSE (({expression}) + 1) // {divisor} - 1 END)"
    )


def tile_column(width: int) -> str:
    """The column of :func:`_events` holding each event's tile of ``width`` µs."""
    return f"__fs_t{width}"


def _piece_columns(group: _Width, index: dict[str, int], *, tile: bool) -> list[str]:
    """Per piece (a tile's partial aggregates, or one raw event) and column: ``n`` (non-null
    count), ``s`` (sum), ``lo`` / ``hi`` (min, max), ``mu`` / ``m2`` (mean and squared
    deviations), ``first`` / ``last`` (order struct with the value)."""
    out: list[str] = []
    needed: dict[int, set[str]] = {}
    for _, agg in group.aggregations:
        parts = needed.setdefault(index[agg.column], {"n"})
        parts.update(
            {
                "sum": {"s"},
                "mean": {"s"},
                "min": {"lo"},
                "max": {"hi"},
                "var": {"s", "mu", "m2"},
                "stddev": {"s", "mu", "m2"},
                "first": {"first"},
                "last": {"last"},
            }.get(agg.function, set())
        )
    for c, parts in sorted(needed.items()):
        v = f"__fs_c{c}"
        with_value = f"struct_pack(o := __fs_ord, v := {v})"
        exprs = (
            {
                "n": f"count({v})",
                "s": f"sum({v})",
                "lo": f"min({v})",
                "hi": f"max({v})",
                "mu": f"avg({v}::DOUBLE)",
                "m2": f"var_pop({v}::DOUBLE) * count({v})",
                "first": f"min({with_value}) FILTER (WHERE {v} IS NOT NULL)",
                "last": f"max({with_value}) FILTER (WHERE {v} IS NOT NULL)",
            }
            if tile
            else {
                "n": f"CAST({v} IS NOT NULL AS BIGINT)",
                "s": v,
                "lo": v,
                "hi": v,
                "mu": f"{v}::DOUBLE",
                "m2": f"CASE WHEN {v} IS NOT NULL THEN 0.0 END",
                "first": f"CASE WHEN {v} IS NOT NULL THEN {with_value} END",
                "last": f"CASE WHEN {v} IS NOT NULL THEN {with_value} END",
            }
        )
        out.extend(f"{exprs[p]} AS __fs_{p}{c}" for p in sorted(parts))
    return out


def _width_ctes(
    name: str, prefix: str, keys: Sequence[str], width: _Width, index: dict[str, int]
) -> list[str]:
    """The pieces of one tile width's windows (edge events, interior tiles) and their merge
    per entity row, ending in ``name`` with ``(ROW_ID, __fs_a{i})``."""
    span = width.width_us
    t = f"e.{ENTITY_TS}"
    first_tiles = [floor_div(f"{t} - {w}", span) for w in width.sliding]
    key_list = "".join(f"e.{k}, " for k in keys)
    probe = (
        f"{name}_probe AS (\n  SELECT e.{ROW_ID}, {t}, {key_list}"
        f"{floor_div(t, span)} AS __fs_last, "
        f"list_distinct([{', '.join([floor_div(t, span), *first_tiles])}]) AS __fs_edges\n"
        f"  FROM {prefix}_ent AS e\n)"
    )
    # Events of the edge tiles: up to t, and (without a lifetime window) after t - longest.
    lower = "" if width.lifetime else f" AND v.__fs_ets > p.{ENTITY_TS} - {width.sliding[-1]}"
    edge_columns = ", ".join(_piece_columns(width, index, tile=False))
    edges = (
        f"{name}_edges AS (\n  SELECT p.{ROW_ID}, p.{ENTITY_TS} AS __fs_t, v.__fs_ets AS __fs_pts, "
        + edge_columns.replace("__fs_c", "v.__fs_c").replace("__fs_ord", "v.__fs_ord")
        + f"\n  FROM (SELECT *, unnest(__fs_edges) AS __fs_tile FROM {name}_probe) AS p\n"
        f"  JOIN {prefix}_ev AS v ON "
        + " AND ".join([*(f"v.{k} = p.{k}" for k in keys), f"v.{tile_column(span)} = p.__fs_tile"])
        + f"\n  WHERE v.__fs_ets <= p.{ENTITY_TS}{lower}\n)"
    )
    merged = _merge(name, f"{name}_edges", width, index)
    if not width.lifetime and all(w <= span for w in width.sliding):
        # Windows no wider than their tiles have no interior: their edges are all of them.
        return [probe, edges, *merged]
    tile_columns = _piece_columns(width, index, tile=True)
    tiles = (
        f"{name}_tiles AS (\n  SELECT {''.join(f'{k}, ' for k in keys)}"
        f"{tile_column(span)} AS __fs_tile, {', '.join(tile_columns)}\n"
        f"  FROM {prefix}_ev\n  GROUP BY ALL\n)"
    )
    key_eq = [f"x.{k} = p.{k}" for k in keys]
    if width.lifetime:
        interior_from = (
            f"{name}_probe AS p JOIN {name}_tiles AS x ON "
            + " AND ".join([*key_eq, "x.__fs_tile < p.__fs_last"])
            + "\n  WHERE NOT list_contains(p.__fs_edges, x.__fs_tile)"
        )
    else:
        between = "range(list_min(p.__fs_edges) + 1, p.__fs_last)"
        expanded = (
            f"(SELECT * FROM (SELECT *, unnest({between}) AS __fs_tile FROM {name}_probe AS p)\n"
            "    WHERE NOT list_contains(__fs_edges, __fs_tile)) AS p"
        )
        interior_from = f"{expanded}\n  JOIN {name}_tiles AS x ON " + " AND ".join(
            [*key_eq, "x.__fs_tile = p.__fs_tile"]
        )
    piece_names = [c.split(" AS ")[-1] for c in tile_columns]
    interior = (
        f"{name}_inner AS (\n  SELECT p.{ROW_ID}, p.{ENTITY_TS} AS __fs_t, "
        f"x.__fs_tile * {span} AS __fs_pts, "
        + ", ".join(f"x.{p}" for p in piece_names)
        + f"\n  FROM {interior_from}\n)"
    )
    # A variance reads the pieces twice (the window's mean first): keep them then.
    kept = (
        " MATERIALIZED"
        if any(a.function in ("var", "stddev") for _, a in width.aggregations)
        else ""
    )
    pieces = (
        f"{name}_pieces AS{kept} (\n  SELECT * FROM {name}_edges\n  UNION ALL BY NAME\n"
        f"  SELECT * FROM {name}_inner\n)"
    )
    return [probe, edges, tiles, interior, pieces, *_merge(name, f"{name}_pieces", width, index)]


def _merge(name: str, pieces: str, width: _Width, index: dict[str, int]) -> list[str]:
    """Merge each window's ``pieces`` per entity row into the values ``__fs_a{i}``."""
    values, means = [], []
    for i, agg in width.aggregations:
        c = index[agg.column]
        where = "" if agg.window_us is None else f" FILTER (WHERE {_within(agg.window_us)})"
        n = f"sum(__fs_n{c}){where}"
        if agg.function in ("var", "stddev"):
            # Two passes (Chan et al.): the window's mean first, then each piece's squared
            # deviations plus its count times its mean's squared distance to the window's.
            means.append(f"sum(__fs_s{c}){where}::DOUBLE / nullif({n}, 0) AS __fs_wmean{i}")
            deviation = f"coalesce(__fs_m2{c}, 0) + __fs_n{c} * (__fs_mu{c} - __fs_wmean{i}) ** 2"
            variance = f"CASE WHEN {n} > 1 THEN sum({deviation}){where} / ({n} - 1) END"
            value = variance if agg.function == "var" else f"sqrt({variance})"
        else:
            value = {
                "count": n,
                "sum": f"CASE WHEN {n} > 0 THEN sum(__fs_s{c}){where} END",
                "mean": f"CASE WHEN {n} > 0 THEN sum(__fs_s{c}){where}::DOUBLE / {n} END",
                "min": f"min(__fs_lo{c}){where}",
                "max": f"max(__fs_hi{c}){where}",
                "first": f"(min(__fs_first{c}){where}).v",
                "last": f"(max(__fs_last{c}){where}).v",
            }[agg.function]
        values.append(f"{value} AS __fs_a{i}")
    if not means:
        return [
            f"{name} AS (\n  SELECT {ROW_ID}, {', '.join(values)}\n  FROM {pieces}\n"
            f"  GROUP BY {ROW_ID}\n)"
        ]
    return [
        f"{name}_mean AS (\n  SELECT {ROW_ID}, {', '.join(means)}\n  FROM {pieces}\n"
        f"  GROUP BY {ROW_ID}\n)",
        f"{name} AS (\n  SELECT p.{ROW_ID}, {', '.join(values)}\n  FROM {pieces} AS p\n"
        f"  JOIN {name}_mean AS m ON m.{ROW_ID} = p.{ROW_ID}\n  GROUP BY p.{ROW_ID}\n)",
    ]


def _within(window_us: int) -> str:
    """Whether a piece (stamped ``__fs_pts``) lies in the window ending at ``__fs_t``."""
    return f"__fs_pts > __fs_t - {window_us}"


def _raw_cte(
    name: str,
    prefix: str,
    keys: Sequence[str],
    group: _Group,
    index: dict[str, int],
    *,
    by_created: bool,
) -> str:
    t = f"e.{ENTITY_TS}"
    conditions = [f"v.{k} = e.{k}" for k in keys]
    conditions.append(f"v.__fs_ets <= {t}")
    if group.window_us is not None:
        conditions.append(f"v.__fs_ets > {t} - {group.window_us}")
    if by_created:
        conditions.append(f"v.__fs_ord.__fs_cts <= {t}")
    values = []
    for i, agg in group.aggregations:
        v = f"v.__fs_c{index[agg.column]}"
        values.append(_raw_value(agg, v) + f" AS __fs_a{i}")
    return (
        f"{name} AS (\n  SELECT e.{ROW_ID}, {', '.join(values)}\n"
        f"  FROM {prefix}_ent AS e JOIN {prefix}_ev AS v ON {' AND '.join(conditions)}\n"
        f"  GROUP BY e.{ROW_ID}\n)"
    )


def _raw_value(agg: Aggregation, v: str) -> str:
    ordered = f"struct_pack(o := v.__fs_ord, v := {v})"
    return {
        "count": f"count({v})",
        "sum": f"sum({v})",
        "mean": f"avg({v}::DOUBLE)",
        "min": f"min({v})",
        "max": f"max({v})",
        "var": f"var_samp({v}::DOUBLE)",
        "stddev": f"stddev_samp({v}::DOUBLE)",
        "first": f"(min({ordered}) FILTER (WHERE {v} IS NOT NULL)).v",
        "last": f"(max({ordered}) FILTER (WHERE {v} IS NOT NULL)).v",
        "count_distinct": f"count(DISTINCT {v})",
        "approx_count_distinct": f"approx_count_distinct({v})",
        "approx_percentile": f"approx_quantile({v}::DOUBLE, {agg.params.get('percentile', 0.5)})",
        "last_k": f"(list({v} ORDER BY v.__fs_ord DESC) FILTER (WHERE {v} IS NOT NULL))"
        f"[1:{agg.params.get('k', 1)}]",
    }[agg.function]
