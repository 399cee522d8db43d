"""Windowed aggregations at each entity row's instant, as DuckDB SQL (built like ``pit_sql``).

The plan (tiles for a window's interior, raw events for its two partial edges, pieces merged
per entity row) is every engine's and is described in :mod:`featurestore.aggregations.plan`,
which also groups the aggregations and says which partial results each needs; this module
writes it as CTEs. Rows sharing the keys and a non-null ``event_id`` count once: the first to
arrive (by created time, then file order), read from every copy in the source whatever its event
time (:func:`first_copy`).

Cost (``bench/aggregations.py``; figures and what was tried in ``bench/README.md``): the plan
reads the events once per tile width for the edges and once more per window wider than a day for
the tile partials, and pays about two tiles of events per entity row at the edges. On DuckDB the
hash joins and groupings here are the cheap operators: plans that sort the events measured slower
(window frames over events and entity rows together, running sums found by ASOF joins), and one
edge join and one merge shared by every window of a view (branch ``aggperf``, commit bc46409)
measured no faster than this plan at the benchmark's size, within the run-to-run noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from featurestore.aggregations.plan import (
    TWO_PASS,
    WindowGroup,
    aggregated_columns,
    piece_parts,
    scan_high_us,
    scan_low_us,
    window_groups,
)
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
    columns = aggregated_columns(view, wanted)
    column_index = {name: i for i, name in enumerate(columns)}
    ctes = [f"{prefix}_src AS (\n{_scan(source, columns, entity, wanted, by_created)}\n)"]
    tiled, raw = window_groups(wanted, by_created=by_created)
    widths = sorted({group.width_us for group in tiled})
    events = _events(prefix, source, columns, column_index, widths)
    ctes.append(f"{prefix}_ev AS (\n{events}\n)")
    keys = [f"__fs_k{i}" for i in range(len(view.join_keys))]
    ctes.append(f"{prefix}_ent AS (\n{entity_keys(entity, source, None)}\n)")
    outputs: list[str] = []
    for g, group in enumerate(tiled):
        name = f"{prefix}_w{g}"
        ctes.extend(_tiled_ctes(name, prefix, keys, group, column_index))
        outputs.append(name)
    for g, group in enumerate(raw):
        name = f"{prefix}_r{g}"
        ctes.append(_raw_cte(name, prefix, keys, group, column_index, by_created=by_created))
        outputs.append(name)
    fields = []
    for index, agg in enumerate(wanted):
        owner = next(
            out for out, group in zip(outputs, [*tiled, *raw], strict=True)
            if any(i == index for i, _ in group.aggregations)
        )  # fmt: skip
        value = f"{owner}.__fs_a{index}"
        if agg.empty is not None:
            value = f"coalesce({value}, {agg.empty})"
        fields.append(f"__fs_f{index} := {value}")
    joins = "".join(f"\n  LEFT JOIN {out} ON {out}.{ROW_ID} = e.{ROW_ID}" for out in outputs)
    ctes.append(
        f"{prefix} AS (\n  SELECT e.{ROW_ID}, struct_pack({', '.join(fields)}) AS __fs_val\n"
        f"  FROM {prefix}_ent AS e{joins}\n)"
    )
    return ctes


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
    return source_scan(
        replace(source, request=request),
        low_us=scan_low_us(source.request.view, wanted, entity.min_ts_us),
        high_us=scan_high_us(source.request.view, entity.max_ts_us),
        require_created=by_created,
    )


def _events(
    prefix: str,
    source: ViewSource,
    columns: Sequence[str],
    index: dict[str, int],
    widths: Sequence[int],
) -> str:
    """Events with their values cast to the declared types, an order struct and their tile of
    each width; deduplicated by event id when the view declares one."""
    view = source.request.view
    keys = [f"__fs_k{i}" for i in range(len(view.join_keys))]
    values = []
    for i, name in enumerate(columns):
        dtype = view.column(name).dtype
        column_type = source.column_types.get(view.source.source_column(name), "")
        values.append(f"{convert_value(f's.__fs_f{i}', dtype, column_type)} AS __fs_c{i}")
    values.extend(f"{floor_div('s.__fs_ets', w)} AS {tile_column(w)}" for w in widths)
    select = (
        f"  SELECT {', '.join(f's.{k}' for k in [*keys, '__fs_ets'])}, "
        f"{order_struct(source, 's', with_event_ts=True)} AS __fs_ord, {', '.join(values)}\n"
        f"  FROM {prefix}_src AS s"
    )
    if view.event_id is None:
        return select
    return f"{select}\n  QUALIFY {first_copy(source, 's', f's.__fs_f{index[view.event_id]}')}"


def first_copy(source: ViewSource, alias: str, event_id: str) -> str:
    """The condition (for ``QUALIFY``) keeping, of the rows of ``alias`` (a :func:`source_scan`)
    sharing the keys and a non-null ``event_id``, only the first to arrive: the least created
    time (a null one first), then file order. Event times and values do not matter: a copy is
    the same event, and the online state picks the same one (see
    :func:`featurestore.online.aggregation_state.add_events`)."""
    keys = [f"{alias}.__fs_k{i}" for i in range(len(source.request.view.join_keys))]
    arrival = order_struct(source, alias, with_event_ts=False)
    partition = ", ".join([*keys, event_id])
    return (
        f"{event_id} IS NULL OR row_number() OVER (PARTITION BY {partition} ORDER BY {arrival}) = 1"
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


def _piece_columns(group: WindowGroup, index: dict[str, int], *, tile: bool) -> list[str]:
    """Per piece (a tile's partial aggregates, or one raw event) and column, the partial
    results of :data:`~featurestore.aggregations.plan.PARTS` the group needs, as
    ``__fs_{part}{column}`` (``first`` / ``last``: an order struct with the value)."""
    out: list[str] = []
    for c, parts in piece_parts((a for _, a in group.aggregations), index).items():
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


def _tiled_ctes(
    name: str, prefix: str, keys: Sequence[str], group: WindowGroup, index: dict[str, int]
) -> list[str]:
    width = group.width_us
    window = group.window_us
    tile = tile_column(width)
    t = f"e.{ENTITY_TS}"
    last_tile = floor_div(t, width)
    first_tile = None if window is None else floor_div(f"{t} - {window}", width)
    # The edge tiles of each entity row: the tile of t, and (sliding windows) the tile of t - W.
    edge_list = (
        f"[{last_tile}]" if first_tile is None else f"list_distinct([{first_tile}, {last_tile}])"
    )
    key_eq = [f"v.{k} = e.{k}" for k in keys]
    lower = "" if window is None else f" AND v.__fs_ets > {t} - {window}"
    edges = (
        f"{name}_edges AS (\n  SELECT e.{ROW_ID}, "
        + ", ".join(_piece_columns(group, index, tile=False))
        .replace("__fs_c", "v.__fs_c")
        .replace("__fs_ord", "v.__fs_ord")
        + f"\n  FROM (SELECT *, unnest({edge_list}) AS __fs_tile FROM {prefix}_ent AS e) AS e\n"
        f"  JOIN {prefix}_ev AS v ON "
        + " AND ".join([*key_eq, f"v.{tile} = e.__fs_tile"])
        + f"\n  WHERE v.__fs_ets <= {t}{lower}\n)"
    )
    if not group.has_interior:  # its two edges are all of it
        return [edges, *_merge(name, f"{name}_edges", group, index)]
    key_list = "".join(f"{k}, " for k in keys)
    tiles = (
        f"{name}_tiles AS (\n  SELECT {key_list}{tile} AS __fs_tile, "
        + ", ".join(_piece_columns(group, index, tile=True))
        + f"\n  FROM {prefix}_ev\n  GROUP BY ALL\n)"
    )
    tile_eq = [f"x.{k} = e.{k}" for k in keys]
    piece_names = [c.split(" AS ")[-1] for c in _piece_columns(group, index, tile=True)]
    if first_tile is None:
        interior_join = " AND ".join([*tile_eq, f"x.__fs_tile < {last_tile}"])
        interior_from = f"{prefix}_ent AS e JOIN {name}_tiles AS x ON {interior_join}"
    else:
        expanded = (
            f"(SELECT *, unnest(range({first_tile} + 1, {last_tile})) AS __fs_tile "
            f"FROM {prefix}_ent AS e) AS e"
        )
        interior_from = f"{expanded} JOIN {name}_tiles AS x ON " + " AND ".join(
            [*tile_eq, "x.__fs_tile = e.__fs_tile"]
        )
    interior = (
        f"{name}_inner AS (\n  SELECT e.{ROW_ID}, "
        + ", ".join(f"x.{p}" for p in piece_names)
        + f"\n  FROM {interior_from}\n)"
    )
    pieces = (
        f"{name}_pieces AS (\n  SELECT * FROM {name}_edges\n  UNION ALL BY NAME\n"
        f"  SELECT * FROM {name}_inner\n)"
    )
    return [tiles, edges, interior, pieces, *_merge(name, f"{name}_pieces", group, index)]


def _merge(name: str, pieces: str, group: WindowGroup, index: dict[str, int]) -> list[str]:
    """Merge the ``pieces`` per entity row into the group's values ``__fs_a{i}``."""
    columns_needing_mean = sorted(
        {index[a.column] for _, a in group.aggregations if a.function in TWO_PASS}
    )
    values = []
    for i, agg in group.aggregations:
        c = index[agg.column]
        n = f"sum(__fs_n{c})"
        values.append(
            {
                "count": f"{n} AS __fs_a{i}",
                "sum": f"CASE WHEN {n} > 0 THEN sum(__fs_s{c}) END AS __fs_a{i}",
                "mean": f"CASE WHEN {n} > 0 THEN sum(__fs_s{c})::DOUBLE / {n} END AS __fs_a{i}",
                "min": f"min(__fs_lo{c}) AS __fs_a{i}",
                "max": f"max(__fs_hi{c}) AS __fs_a{i}",
                "first": f"min(__fs_first{c}).v AS __fs_a{i}",
                "last": f"max(__fs_last{c}).v AS __fs_a{i}",
                "var": f"{_variance(c, n)} AS __fs_a{i}",
                "stddev": f"sqrt({_variance(c, n)}) AS __fs_a{i}",
            }[agg.function]
        )
    if not columns_needing_mean:
        return [
            f"{name} AS (\n  SELECT {ROW_ID}, {', '.join(values)}\n  FROM {pieces}\n"
            f"  GROUP BY {ROW_ID}\n)"
        ]
    # Two passes for the variance: the window's mean first, then each piece's deviation from it.
    means = ", ".join(
        f"sum(__fs_s{c})::DOUBLE / nullif(sum(__fs_n{c}), 0) AS __fs_wmean{c}"
        for c in columns_needing_mean
    )
    return [
        f"{name}_mean AS (\n  SELECT {ROW_ID}, {means}\n  FROM {pieces}\n  GROUP BY {ROW_ID}\n)",
        f"{name} AS (\n  SELECT p.{ROW_ID}, {', '.join(values)}\n  FROM {pieces} AS p\n"
        f"  JOIN {name}_mean AS m ON m.{ROW_ID} = p.{ROW_ID}\n  GROUP BY p.{ROW_ID}\n)",
    ]


def _variance(c: int, n: str) -> str:
    deviation = f"coalesce(__fs_m2{c}, 0) + __fs_n{c} * (__fs_mu{c} - __fs_wmean{c}) ** 2"
    return f"CASE WHEN {n} > 1 THEN sum({deviation} ) / ({n} - 1) END"


def _raw_cte(
    name: str,
    prefix: str,
    keys: Sequence[str],
    group: WindowGroup,
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
