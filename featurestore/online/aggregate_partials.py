"""Partial aggregates of the online state: one aggregation's mergeable summary of a set of
events, how two merge, and the value a partial gives (see
:mod:`featurestore.online.aggregation_state`, which keeps them per key).

``None`` is the empty partial of every function. Sums of floats are exact-rounded
(``math.fsum``); variances merge by Chan et al.'s pairwise update; distinct counts keep the
distinct values (or, past a size, a HyperLogLog sketch from :mod:`featurestore.online.hll`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from featurestore.aggregations.functions import FUNCTIONS
from featurestore.online.hll import estimate, is_sketch, sketch_union

#: Functions whose empty window is 0 instead of null.
COUNTING = frozenset(name for name, function in FUNCTIONS.items() if function.empty == 0)


@dataclass(frozen=True)
class AggregateSpec:
    """One aggregation as the online state needs it: output ``name``, input ``column``,
    ``function``, ``window_us`` (None: lifetime) and the function's parameters."""

    name: str
    column: str
    function: str
    window_us: int | None
    percentile: float | None = None
    k: int | None = None
    integer_sum: bool = False  # sum of an integer column stays an integer


def partial_of_values(spec: AggregateSpec, values: list[Any]) -> Any:
    if not values:
        return None
    function = spec.function
    if function == "count":
        return len(values)
    if function in ("sum", "mean"):
        total = sum(values) if spec.integer_sum else math.fsum(values)
        return [len(values), total]
    if function in ("var", "stddev"):
        n = len(values)
        mean = math.fsum(values) / n
        return [n, mean, math.fsum((v - mean) * (v - mean) for v in values)]
    if function == "min":
        return min(values)
    if function == "max":
        return max(values)
    if function in ("count_distinct", "approx_count_distinct"):
        return sorted(set(values))
    if function == "approx_percentile":
        return sorted(values)
    raise ValueError(f"unknown aggregation function {function!r}")


def merge_partials(spec: AggregateSpec, a: Any, b: Any) -> Any:
    """The partial of the union of two disjoint event sets (``a`` holds the older events)."""
    if a is None:
        return b
    if b is None:
        return a
    function = spec.function
    if function == "count":
        return a + b
    if function in ("sum", "mean"):
        return [a[0] + b[0], a[1] + b[1] if spec.integer_sum else math.fsum((a[1], b[1]))]
    if function in ("var", "stddev"):  # Chan et al.'s pairwise update
        n = a[0] + b[0]
        delta = b[1] - a[1]
        mean = a[1] + delta * b[0] / n
        return [n, mean, a[2] + b[2] + delta * delta * a[0] * b[0] / n]
    if function == "min":
        return min(a, b)
    if function == "max":
        return max(a, b)
    if function == "first":
        return min(a, b, key=lambda item: tuple(item[:3]))
    if function == "last":
        return max(a, b, key=lambda item: tuple(item[:3]))
    if function == "last_k":
        assert spec.k is not None
        return sorted([*a, *b], key=lambda item: tuple(item[:3]))[-spec.k :]
    if function == "approx_count_distinct" and (is_sketch(a) or is_sketch(b)):
        return sketch_union(a, b)
    if function in ("count_distinct", "approx_count_distinct"):
        return sorted(set(a) | set(b))
    if function == "approx_percentile":
        return sorted([*a, *b])
    raise ValueError(f"unknown aggregation function {function!r}")


def final_value(spec: AggregateSpec, partial: Any) -> Any:
    """The aggregation's value from its partial (empty: 0 for counts, else None)."""
    function = spec.function
    if partial is None:
        return 0 if function in COUNTING else None
    if function == "count":
        return partial
    if function == "sum":
        return partial[1]
    if function == "mean":
        return partial[1] / partial[0]
    if function in ("var", "stddev"):
        if partial[0] < 2:
            return None
        var = max(partial[2], 0.0) / (partial[0] - 1)
        return var if function == "var" else math.sqrt(var)
    if function in ("min", "max"):
        return partial
    if function in ("first", "last"):
        return partial[3]
    if function == "last_k":
        return [item[3] for item in reversed(partial)]
    if function == "approx_count_distinct" and is_sketch(partial):
        return estimate(partial)
    if function in ("count_distinct", "approx_count_distinct"):
        return len(partial)
    if function == "approx_percentile":
        return percentile_of_sorted(partial, spec.percentile or 0.5)
    raise ValueError(f"unknown aggregation function {function!r}")


def percentile_of_sorted(values: Sequence[Any], percentile: float) -> Any:
    """The nearest-rank percentile of sorted ``values``: the smallest value with at least a
    ``percentile`` share of the values at or below it (rank ``ceil(p * n)``, 1-based), so it
    meets the rank bound of ``featurestore.aggregations`` exactly."""
    rank = math.ceil(percentile * len(values) - 1e-9)
    return values[min(max(rank, 1), len(values)) - 1]


# -- updates ---------------------------------------------------------------------------------
