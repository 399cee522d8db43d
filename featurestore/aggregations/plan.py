"""What offline engines share to compute windowed aggregations: the columns a retrieval reads,
how far back its scan must go, and the tiled plan (tiles for a window's interior, raw events for
its two partial edges) with the partial results each function merges from.

DuckDB runs the tiled plan (:mod:`featurestore.offline.duckdb.agg_sql`). Spark
(:mod:`featurestore.offline.spark.aggregate`) takes from it the split of :data:`TILED` functions
(small, mergeable state) from the others, and computes the former with range frames, measured
faster there (``bench/aggregations_spark.py``).

For an entity row ``(keys, t)`` and an aggregation over window ``W``, the value is the function
over the source rows with the same keys and ``t - W < event_ts <= t`` (``event_ts <= t`` for a
lifetime window), null inputs skipped (see :mod:`featurestore.aggregations.functions`).

The plan never joins every event of a key to every entity row. Time is cut into *tiles* of
width ``T`` (:func:`tile_us`: ``T = W`` for windows up to a day, one day beyond, and one day for
lifetime windows; tile ``i`` holds ``i*T <= event_ts < (i+1)*T``, ``i`` rounded down, also before
1970). The window ``(t - W, t]`` is then:

* the tiles strictly between the tile of ``t - W`` and the tile of ``t``, read as *partial
  aggregates* per key and tile (:data:`PARTS`: count, sum, min, max, per-tile mean and squared
  deviations, first and last by order) computed once from the events; and
* the two partial *edge* tiles, read as raw events filtered by the exact bounds: the events of
  the tile of ``t - W`` after ``t - W``, and those of the tile of ``t`` up to ``t``.

So an entity row meets ``W / T - 1`` tile rows plus the events of two tiles, instead of every
event of its key. The pieces are merged per entity row: counts and sums add (a sum is the sum of
exactly the window's values, grouped by tile), min and max combine, ``first`` / ``last`` take the
least / greatest ``(event time, created time, file, position)``, and the sample variance merges
per-piece means and squared deviations in two passes (Chan et al.), which stays accurate when
the values are large and their spread small.

Functions whose partial results do not merge (``count_distinct``, ``approx_count_distinct``,
``approx_percentile``, ``last_k``) read the window's raw events, joined on the keys and bounded by
the window, and so does every aggregation under ``filter_by_created_timestamp`` (which keeps an
event only once created, a condition the tiles do not know). Rows sharing the keys and a
non-null ``event_id`` count once: the first by created time, then file order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from featurestore.definitions.aggregation import Aggregation
from featurestore.definitions.feature_view import FeatureView

#: Functions computed from tile partial aggregates; the others read the window's raw events.
TILED = frozenset({"count", "sum", "mean", "min", "max", "stddev", "var", "first", "last"})
DAY_US = 86_400_000_000

#: The partial results of one piece (a tile, or one raw edge event) that each tiled function
#: merges from, besides ``n``, the non-null count every function needs: ``s`` (sum), ``lo`` /
#: ``hi`` (min, max), ``mu`` / ``m2`` (mean and sum of squared deviations from it), ``first`` /
#: ``last`` (the least / greatest ``(order, value)`` with a non-null value).
PARTS: Mapping[str, frozenset[str]] = {
    "count": frozenset(),
    "sum": frozenset({"s"}),
    "mean": frozenset({"s"}),
    "min": frozenset({"lo"}),
    "max": frozenset({"hi"}),
    "var": frozenset({"s", "mu", "m2"}),
    "stddev": frozenset({"s", "mu", "m2"}),
    "first": frozenset({"first"}),
    "last": frozenset({"last"}),
}
#: Functions that need the window's mean before their pieces merge (the second pass).
TWO_PASS = frozenset({"var", "stddev"})


def tile_us(window_us: int | None) -> int:
    """The tile width of a window (µs): the window itself up to a day, else one day."""
    return DAY_US if window_us is None else min(window_us, DAY_US)


@dataclass(frozen=True)
class WindowGroup:
    """Aggregations sharing one window, evaluated from the same pieces; each is kept with its
    index among the requested aggregations (the engines name values by it)."""

    window_us: int | None
    aggregations: tuple[tuple[int, Aggregation], ...]

    @property
    def width_us(self) -> int:
        """The width of the group's tiles."""
        return tile_us(self.window_us)

    @property
    def has_interior(self) -> bool:
        """Whether whole tiles can lie inside the window (a window no wider than its tiles has
        none: its two edges are all of it)."""
        return self.window_us is None or self.window_us > self.width_us


def window_groups(
    wanted: Sequence[Aggregation], *, by_created: bool
) -> tuple[list[WindowGroup], list[WindowGroup]]:
    """The requested aggregations grouped by window: those computed from tiles, then those that
    read raw events (every one under ``filter_by_created_timestamp``)."""
    tiled: dict[int | None, list[tuple[int, Aggregation]]] = {}
    raw: dict[int | None, list[tuple[int, Aggregation]]] = {}
    for index, agg in enumerate(wanted):
        into = tiled if agg.function in TILED and not by_created else raw
        into.setdefault(agg.window_us, []).append((index, agg))
    return (
        [WindowGroup(w, tuple(a)) for w, a in tiled.items()],
        [WindowGroup(w, tuple(a)) for w, a in raw.items()],
    )


def piece_parts(
    aggregations: Iterable[Aggregation], column_index: Mapping[str, int]
) -> dict[int, set[str]]:
    """Per aggregated column (by its index in :func:`aggregated_columns`), the :data:`PARTS`
    the tiled ``aggregations`` need, ``n`` included; sorted by column."""
    needed: dict[int, set[str]] = {}
    for agg in aggregations:
        needed.setdefault(column_index[agg.column], {"n"}).update(PARTS[agg.function])
    return dict(sorted(needed.items()))


def aggregated_columns(view: FeatureView, wanted: Sequence[Aggregation]) -> list[str]:
    """The source columns a retrieval reads: the aggregated ones and the event id, sorted."""
    return sorted({agg.column for agg in wanted} | ({view.event_id} if view.event_id else set()))


def scan_low_us(
    view: FeatureView, wanted: Sequence[Aggregation], min_entity_us: int | None
) -> int | None:
    """The earliest event time a retrieval can need (the longest window before the earliest
    entity row), to prune the source scan; ``None`` for a lifetime window, and for a view with
    an event id, whose deduplication must see every copy of an event."""
    windows = [agg.window_us for agg in wanted]
    if min_entity_us is None or view.event_id is not None or None in windows:
        return None
    return min_entity_us - max(w for w in windows if w is not None)


def scan_high_us(view: FeatureView, max_entity_us: int | None) -> int | None:
    """The latest event time a retrieval can need (the latest entity row), to prune the source
    scan; ``None`` for a view with an event id: which copy of an event counts (the first to
    arrive) may not depend on the entity rows asked, so every copy is read."""
    return None if view.event_id is not None else max_entity_us
