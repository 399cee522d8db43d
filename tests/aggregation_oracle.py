"""A brute-force oracle of windowed aggregations, written from the design's text.

For each entity row ``(keys, t)`` and aggregation over window ``W``: the source rows with equal
keys (typed; a null key never matches), a non-null event time in ``(t - W, t]`` (``<= t`` for a
lifetime window), not before the retention cut-off, and (``filter_by_created_timestamp``) a
non-null created time ``<= t``. Rows sharing the keys and a non-null event id count once (the
first by created time, a null one first, then file order). Null inputs are skipped; an empty
window gives 0 for the counting functions and None for the rest; ``first``/``last``/``last_k``
order by event time, created time (null first), then file order. Plain Python loops, no
cleverness: every engine must agree with it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from featurestore.definitions.aggregation import Aggregation

_NEVER = datetime.min.replace(tzinfo=None)


def _order(row: Mapping[str, Any]) -> tuple[Any, ...]:
    created = row.get("created")
    return (row["ts"], (0, _NEVER) if created is None else (1, created.replace(tzinfo=None)),
            row["__file"], row["__pos"])  # fmt: skip


def deduplicated(
    rows: Sequence[Mapping[str, Any]], keys: Sequence[str], event_id: str | None
) -> list[Mapping[str, Any]]:
    """Rows left after event-id deduplication (the first copy by created time, then file order)."""
    if event_id is None:
        return list(rows)
    kept: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    others = []
    for row in rows:
        if row[event_id] is None:
            others.append(row)
            continue
        ident = (*(row[k] for k in keys), row[event_id])
        arrival = _order(row)[1:]
        if ident not in kept or arrival < _order(kept[ident])[1:]:
            kept[ident] = row
    return others + list(kept.values())


def window_rows(
    rows: Sequence[Mapping[str, Any]],
    keys: Mapping[str, Any],
    t: datetime,
    window: timedelta | None,
    *,
    not_before: datetime | None = None,
    by_created: bool = False,
) -> list[Mapping[str, Any]]:
    """The rows of one window, in order (event time, created time, file order)."""
    chosen = []
    for row in rows:
        if row["ts"] is None or any(row[k] is None or row[k] != v for k, v in keys.items()):
            continue
        if row["ts"] > t or (window is not None and row["ts"] <= t - window):
            continue
        if not_before is not None and row["ts"] < not_before:
            continue
        if by_created and (row.get("created") is None or row["created"] > t):
            continue
        chosen.append(row)
    return sorted(chosen, key=_order)


def exact_value(agg: Aggregation, rows: Sequence[Mapping[str, Any]]) -> Any:
    """The aggregation over the window's rows (in order); approx functions get exact values."""
    values = [r[agg.column] for r in rows if r[agg.column] is not None]
    if not values:
        return agg.empty
    f = agg.function
    if f == "count":
        return len(values)
    if f == "sum":
        return math.fsum(values) if isinstance(values[0], float) else sum(values)
    if f == "mean":
        return float(sum(Fraction(v) for v in values) / len(values))
    if f in ("min", "max"):
        return min(values) if f == "min" else max(values)
    if f in ("var", "stddev"):
        if len(values) < 2:
            return None
        var = float(statistics.variance([Fraction(v) for v in values]))
        return var if f == "var" else math.sqrt(var)
    if f == "first":
        return values[0]
    if f == "last":
        return values[-1]
    if f in ("count_distinct", "approx_count_distinct"):
        return len(set(values))
    if f == "approx_percentile":
        return sorted(values)
    if f == "last_k":
        return list(reversed(values))[: agg.k]
    raise AssertionError(f"no oracle for {f}")


def matches(agg: Aggregation, got: Any, rows: Sequence[Mapping[str, Any]], *, rank_error: float,
            distinct_error: float) -> bool:  # fmt: skip
    """Whether an engine's value equals the oracle's (floats within rounding of 1e-9 relative to
    the values' magnitude; approx functions within their documented bound)."""
    want = exact_value(agg, rows)
    if want is None or got is None:
        return want is None and got is None
    if agg.function == "approx_percentile":
        below = sum(1 for v in want if v < got) / len(want)
        upto = sum(1 for v in want if v <= got) / len(want)
        p = agg.percentile
        return below - rank_error <= p <= upto + rank_error
    if agg.function == "approx_count_distinct":
        return abs(got - want) <= max(1, distinct_error * want)
    if isinstance(want, float) and not isinstance(want, bool):
        values = [abs(r[agg.column]) for r in rows if r[agg.column] is not None]
        scale = {"sum": sum(values), "var": max(values) ** 2}.get(agg.function, max(values))
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9 * scale)
    return bool(got == want)
