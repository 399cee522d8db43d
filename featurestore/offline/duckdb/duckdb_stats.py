"""Profiles computed in DuckDB: the queries of :mod:`featurestore.offline.duckdb.stats_sql`, run and
assembled into a :class:`~featurestore.quality.profile.TableProfile`.

    profile = profile_relation(connection, relation_sql, columns, label="feature view 'x'")

Four scans of the relation at most, whatever its size: its row count, a deterministic sample
(kept in a temporary table), the main aggregate scan, and (only when the table is larger than
the sample) the scan that picks the exact quantiles; plus one grouped scan per column for its most
frequent values. Every query runs on the engine's connection, so the engine's ``memory_limit``
and ``threads`` apply.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import duckdb

from featurestore.offline.duckdb.stats_sql import (
    Interval,
    StatsColumn,
    candidate_counts_sql,
    count_sql,
    frequent_sql,
    grid_sql,
    order_statistics_sql,
    ranked_counts_sql,
    sample_sql,
    summary_sql,
)
from featurestore.quality.profile import (
    CATEGORICAL,
    EXACT_TOP_DISTINCT,
    GRID_POINTS,
    MAX_CATEGORIES,
    NUMERIC,
    QUANTILES,
    SAMPLE_ROWS,
    TOP_VALUES,
    ColumnStats,
    TableProfile,
)
from featurestore.types import Bool

#: Sampled candidates per kept value when the ranking of frequent values cannot be exact.
CANDIDATE_FACTOR = 3
_names = itertools.count()


@dataclass(frozen=True)
class ProfileOptions:
    """Tuning of :func:`profile_relation` (tests lower them to exercise the sampled paths)."""

    sample_rows: int = SAMPLE_ROWS
    exact_top_distinct: int = EXACT_TOP_DISTINCT


@dataclass
class _Summary:
    """What the main scan says about one column."""

    values: int
    minimum: Any
    maximum: Any
    distinct: int
    mean: float | None = None
    stddev: float | None = None
    histogram: dict[float, int] | None = None


def profile_relation(
    connection: duckdb.DuckDBPyConnection,
    relation_sql: str,
    columns: Sequence[StatsColumn],
    *,
    reference: Mapping[str, ColumnStats] | None = None,
    options: ProfileOptions | None = None,
) -> TableProfile:
    """Profile ``columns`` of the rows ``relation_sql`` selects (see :mod:`stats_sql`).

    With ``reference`` (column name -> a reference column of the same kind), each such column
    also gets its counts on the reference's grid or categories (``probe_*``). ``seconds`` is
    left at 0: the caller times the whole operation.
    """
    options = options or ProfileOptions()
    relation = f"__fs_stats_{next(_names)}"
    sample = f"{relation}_sample"
    connection.execute(f"CREATE TEMP VIEW {relation} AS {relation_sql}")
    try:
        [(rows,)] = connection.execute(count_sql(relation)).fetchall()
        probes = _probes(columns, reference or {})
        if rows == 0:
            return TableProfile(rows=0, columns=_empty_columns(columns, 0, probes))
        every = max(1, math.ceil(rows / max(1, options.sample_rows)))
        connection.execute(
            f"CREATE TEMP TABLE {sample} AS {sample_sql(relation, len(columns), every)}"
        )
        profiler = _Profiler(connection, relation, sample, columns, probes, every, options)
        return TableProfile(rows=int(rows), columns=profiler.run(int(rows)))
    finally:
        # A failed query leaves the error to report; the cleanup must not replace it.
        with contextlib.suppress(duckdb.Error):
            connection.execute(f"DROP TABLE IF EXISTS {sample}")
            connection.execute(f"DROP VIEW IF EXISTS {relation}")


def _probes(
    columns: Sequence[StatsColumn], reference: Mapping[str, ColumnStats]
) -> dict[int, ColumnStats]:
    """Column index -> the reference column to count on, when both are of the same kind."""
    found = {}
    for index, column in enumerate(columns):
        ref = reference.get(column.name)
        if ref is not None and ref.kind == column.kind:
            found[index] = ref
    return found


def _empty_columns(
    columns: Sequence[StatsColumn], rows: int, probes: Mapping[int, ColumnStats]
) -> dict[str, ColumnStats]:
    return {c.name: _empty(c, rows, probes.get(i)) for i, c in enumerate(columns)}


def _empty(column: StatsColumn, rows: int, probe: ColumnStats | None) -> ColumnStats:
    empty = ColumnStats.empty(column.name, column.kind, column.dtype.name, rows)
    if probe is None:
        return empty
    if column.kind == NUMERIC:
        return replace(empty, probe_cumulative=[0] * len(probe.grid))
    return replace(empty, probe_categories=[0] * len(probe.categories))


class _Profiler:
    """One profiling run over a relation with at least one row."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        relation: str,
        sample: str,
        columns: Sequence[StatsColumn],
        probes: Mapping[int, ColumnStats],
        every: int,
        options: ProfileOptions,
    ) -> None:
        self.connection = connection
        self.relation = relation
        self.sample = sample
        self.columns = columns
        self.probes = probes
        self.every = every
        self.options = options
        self.numeric = [i for i, c in enumerate(columns) if c.kind == NUMERIC]

    def _fetch(self, sql: str) -> list[tuple[Any, ...]]:
        return self.connection.execute(sql).fetchall()

    def run(self, rows: int) -> dict[str, ColumnStats]:
        grids = self._grids()
        boundaries = []
        for index in range(len(self.columns)):
            points = set(grids.get(index, []))
            probe = self.probes.get(index)
            if probe is not None and probe.kind == NUMERIC:
                points.update(probe.grid)
            boundaries.append(sorted(points))
        summaries = self._summaries(boundaries)
        exact_quantiles = self.every == 1
        picks = {} if exact_quantiles else self._order_statistics(summaries, grids)
        result = {}
        for index, column in enumerate(self.columns):
            summary = summaries[index]
            if summary.values == 0:
                result[column.name] = _empty(column, rows, self.probes.get(index))
                continue
            if column.kind == NUMERIC:
                result[column.name] = self._numeric(
                    index, rows, summary, grids.get(index, []), picks.get(index)
                )
            else:
                result[column.name] = self._categorical(index, rows, summary)
        return result

    # -- scans ---------------------------------------------------------------------------------

    def _grids(self) -> dict[int, list[float]]:
        if not self.numeric:
            return {}
        [row] = self._fetch(grid_sql(self.sample, self.numeric))
        return {
            index: [float(v) for v in points]
            for index, points in zip(self.numeric, row, strict=True)
            if points is not None
        }

    def _summaries(self, boundaries: Sequence[Sequence[float]]) -> list[_Summary]:
        [row] = self._fetch(summary_sql(self.relation, self.columns, boundaries))
        values = iter(row[1:])
        summaries = []
        for column in self.columns:
            summary = _Summary(
                values=int(next(values)),
                minimum=next(values),
                maximum=next(values),
                distinct=int(next(values)),
            )
            if column.kind == NUMERIC:
                summary.mean = _float(next(values))
                summary.stddev = _float(next(values))
                histogram = next(values)
                summary.histogram = {} if histogram is None else dict(histogram)
            summaries.append(summary)
        return summaries

    def _order_statistics(
        self, summaries: Sequence[_Summary], grids: Mapping[int, list[float]]
    ) -> dict[int, dict[int, float]]:
        """Column index -> {rank: value} for the ranks the quantiles need (sampled grids)."""
        plans = []
        for index in self.numeric:
            summary = summaries[index]
            if summary.values == 0:
                continue
            bounds = sorted(set(grids.get(index, [])))
            cumulative = _cumulative(summary.histogram or {}, bounds)
            ranks = sorted({r for q in QUANTILES.values() for r in _ranks(summary.values, q)})
            plans.append(_RankPlan(index, summary.values, bounds, cumulative, ranks))
        if not plans:
            return {}
        [row] = self._fetch(
            order_statistics_sql(
                self.relation, [(p.index, p.intervals, p.fractions) for p in plans]
            )
        )
        return {p.index: p.read(values) for p, values in zip(plans, row, strict=True)}

    # -- assembling ----------------------------------------------------------------------------

    def _numeric(
        self,
        index: int,
        rows: int,
        summary: _Summary,
        grid: list[float],
        picked: dict[int, float] | None,
    ) -> ColumnStats:
        column = self.columns[index]
        histogram = summary.histogram or {}
        if picked is None:
            # The sample is the whole table: the grid points are the exact percentiles.
            quantiles = {name: grid[round(q * (GRID_POINTS - 1))] for name, q in QUANTILES.items()}
        else:
            quantiles = {
                name: _interpolate(picked, summary.values, q) for name, q in QUANTILES.items()
            }
        probe = self.probes.get(index)
        natural = _integral if column.dtype.name in {"Int32", "Int64"} else float
        return ColumnStats(
            name=column.name,
            kind=NUMERIC,
            dtype=column.dtype.name,
            rows=rows,
            nulls=rows - summary.values,
            distinct=summary.distinct,
            min=natural(summary.minimum),
            max=natural(summary.maximum),
            mean=summary.mean,
            stddev=summary.stddev,
            quantiles=quantiles,
            top_values=[(natural(v), n) for v, n in self._frequent(index, summary, TOP_VALUES)],
            grid=grid,
            cumulative=_cumulative(histogram, grid),
            categories=[],
            probe_cumulative=None if probe is None else _cumulative(histogram, probe.grid),
        )

    def _categorical(self, index: int, rows: int, summary: _Summary) -> ColumnStats:
        column = self.columns[index]
        probe = self.probes.get(index)
        wanted = [] if probe is None else [v for v, _ in probe.categories]
        counts = self._counts(index, summary, MAX_CATEGORIES, wanted)
        categories = _ranked(counts)[:MAX_CATEGORIES]
        natural: Any = (lambda v: v == "true") if column.dtype == Bool else str
        return ColumnStats(
            name=column.name,
            kind=CATEGORICAL,
            dtype=column.dtype.name,
            rows=rows,
            nulls=rows - summary.values,
            distinct=summary.distinct,
            min=None if summary.minimum is None else str(summary.minimum),
            max=None if summary.maximum is None else str(summary.maximum),
            mean=None,
            stddev=None,
            quantiles={},
            top_values=[(natural(v), n) for v, n in categories[:TOP_VALUES]],
            grid=[],
            cumulative=[],
            categories=[(str(v), n) for v, n in categories],
            probe_categories=None if probe is None else [counts.get(v, 0) for v in wanted],
        )

    def _exact_ranking(self, summary: _Summary) -> bool:
        return self.every == 1 or summary.distinct <= self.options.exact_top_distinct

    def _frequent(self, index: int, summary: _Summary, limit: int) -> list[tuple[Any, int]]:
        if self._exact_ranking(summary):
            return [(v, int(n)) for v, n in self._fetch(frequent_sql(self.relation, index, limit))]
        return _ranked(self._counts(index, summary, limit, []))[:limit]

    def _counts(
        self, index: int, summary: _Summary, limit: int, wanted: Sequence[Any]
    ) -> dict[Any, int]:
        """Exact counts of the ``limit`` most frequent values (or of sampled candidates for
        them) and of the ``wanted`` values."""
        kind = self.columns[index].kind
        if self._exact_ranking(summary):
            sql = ranked_counts_sql(self.relation, index, kind, limit, wanted)
        else:
            sampled = self._fetch(frequent_sql(self.sample, index, limit * CANDIDATE_FACTOR))
            candidates = list(dict.fromkeys([v for v, _ in sampled] + list(wanted)))
            if not candidates:
                return {}
            sql = candidate_counts_sql(self.relation, index, kind, candidates)
        return {value: int(n) for value, n in self._fetch(sql)}


@dataclass(frozen=True)
class _RankPlan:
    """Where the order statistics a column's quantiles need lie, from its exact grid counts.

    With ``C[j]`` the count of values ``<= bounds[j]``, the value of rank ``r`` (0-based) lies
    in ``(bounds[j-1], bounds[j]]`` for the first ``j`` with ``C[j] > r`` (open-ended past the
    last bound). Only the values of those intervals are kept; in their union, in order, rank
    ``r`` is at ``offset of its interval + r - C[j-1]``.
    """

    index: int
    values: int
    bounds: list[float]
    cumulative: list[int]
    ranks: list[int]

    def _slot(self, rank: int) -> int:
        return bisect.bisect_right(self.cumulative, rank)

    @property
    def _slots(self) -> list[int]:
        return sorted({self._slot(r) for r in self.ranks})

    def _below(self, slot: int) -> int:
        return self.cumulative[slot - 1] if slot > 0 else 0

    def _size(self, slot: int) -> int:
        upto = self.cumulative[slot] if slot < len(self.cumulative) else self.values
        return upto - self._below(slot)

    @property
    def intervals(self) -> list[Interval]:
        return [
            Interval(
                lower=self.bounds[slot - 1] if slot > 0 else None,
                upper=self.bounds[slot] if slot < len(self.bounds) else None,
            )
            for slot in self._slots
        ]

    def _positions(self) -> list[int]:
        offsets, total = {}, 0
        for slot in self._slots:
            offsets[slot] = total
            total += self._size(slot)
        return [offsets[self._slot(r)] + r - self._below(self._slot(r)) for r in self.ranks]

    @property
    def fractions(self) -> list[float]:
        kept = sum(self._size(slot) for slot in self._slots)
        # quantile_disc(x, f) returns the value at 0-based position ceil(n * f) - 1.
        return [(position + 0.5) / kept for position in self._positions()]

    def read(self, values: Sequence[Any]) -> dict[int, float]:
        return {rank: float(v) for rank, v in zip(self.ranks, values, strict=True)}


def _ranks(values: int, q: float) -> tuple[int, ...]:
    """The 0-based ranks linear interpolation at ``q`` reads: ``floor(h)`` and the next."""
    h = (values - 1) * q
    low = math.floor(h)
    return (low,) if h == low else (low, min(low + 1, values - 1))


def _interpolate(picked: Mapping[int, float], values: int, q: float) -> float:
    h = (values - 1) * q
    low = math.floor(h)
    if h == low:
        return picked[low]
    below, above = picked[low], picked[min(low + 1, values - 1)]
    return below + (above - below) * (h - low)


def _cumulative(histogram: Mapping[float, int], points: Sequence[float]) -> list[int]:
    """Count of values ``<= p`` for each point, from a histogram whose boundaries include
    every point (each bucket holds the values above the previous boundary)."""
    bounds = sorted(histogram)
    running = list(itertools.accumulate(histogram[b] for b in bounds))
    # The overflow bucket (+inf key past the last boundary) is never a point's bucket unless a
    # point is +inf, whose count is then everything: accumulate handles both.
    return [
        running[bisect.bisect_right(bounds, p) - 1] if bounds and p >= bounds[0] else 0
        for p in points
    ]


def _ranked(counts: Mapping[Any, int]) -> list[tuple[Any, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _integral(value: Any) -> float:
    number = float(value)
    return int(number) if math.isfinite(number) else number
