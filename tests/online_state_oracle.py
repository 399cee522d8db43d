"""A brute-force oracle of the online aggregation state (events as the state holds them).

The oracle is the definition itself, written the slow, obvious way: for instant ``t`` it takes
every event of the key with ``t - window < ts <= t`` (``ts <= t`` for a lifetime window), drops
null inputs, and applies the function (sample variance, ``first``/``last`` by event time, then
created time, then order; ``last_k`` newest first). No state, no bisection, no merging.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from typing import Any

from featurestore.online.aggregate_partials import AggregateSpec
from featurestore.online.aggregation_state import Event

SECOND = 1_000_000
HOUR = 3600 * SECOND


def oracle(spec: AggregateSpec, events: Sequence[Event], column: int, at_us: int) -> Any:
    """``spec`` over ``events`` at instant ``at_us``, by brute force."""
    low = -math.inf if spec.window_us is None else at_us - spec.window_us
    chosen = [e for e in events if low < e.ts <= at_us and e.values[column] is not None]
    chosen.sort(key=lambda e: (e.ts, e.created, e.seq))
    values = [e.values[column] for e in chosen]
    f = spec.function
    if f == "count":
        return len(values)
    if f in ("count_distinct", "approx_count_distinct"):
        return len(set(values))
    if not values:
        return None
    if f == "sum":
        return sum(values)
    if f == "mean":
        return statistics.fmean(values)
    if f == "min":
        return min(values)
    if f == "max":
        return max(values)
    if f in ("var", "stddev"):
        if len(values) < 2:
            return None
        var = statistics.variance(values)
        return var if f == "var" else math.sqrt(var)
    if f == "first":
        return values[0]
    if f == "last":
        return values[-1]
    if f == "last_k":
        assert spec.k is not None
        return list(reversed(values))[: spec.k]
    if f == "approx_percentile":
        # Nearest rank: the smallest value with at least p of the values at or below it.
        ordered = sorted(values)
        p = spec.percentile or 0.5
        return next(v for v in ordered if sum(x <= v for x in ordered) >= p * len(ordered) - 1e-9)
    raise AssertionError(f)


def close(a: Any, b: Any, rel: float = 1e-9) -> bool:
    """Equal, floats within ``rel`` relative (or 1e-9 absolute around zero)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, rel) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return False
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)
    return bool(a == b)


def random_events(
    rng: random.Random,
    *,
    n: int,
    start_us: int,
    span_us: int,
    seq_from: int = 0,
    id_from: int = 0,
) -> list[Event]:
    """``n`` events over ``[start_us, start_us + span_us)`` with ties (few distinct times),
    null values, colliding distinct values, and columns (fare float, rider str, n int)."""
    stamps = [start_us + rng.randrange(span_us) for _ in range(max(1, n // 3))]
    events = []
    for i in range(n):
        ts = rng.choice(stamps)
        created = ts + rng.choice([0, 0, SECOND, 5 * SECOND])
        fare = None if rng.random() < 0.15 else round(rng.uniform(0, 50), 3)
        rider = None if rng.random() < 0.1 else rng.choice(["a", "b", "c", "1", "é"])
        count = None if rng.random() < 0.1 else rng.randrange(-5, 20)
        events.append(Event(ts, created, seq_from + i, (fare, rider, count), id_from + i))
    return events
