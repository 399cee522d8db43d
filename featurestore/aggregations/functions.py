"""The aggregation functions: what each accepts, what it returns, and its empty-window value.

This table is the one place both sides (offline engines, online state) read an aggregation's
semantics from. A value is computed over the source rows of one key with
``t - window < event_ts <= t`` (every row with ``event_ts <= t`` for a lifetime window); null
inputs are skipped before the function sees them; a window with no non-null input gives
:attr:`AggFunction.empty` (0 for the counting functions, null for the rest).

Ordering (``first``, ``last``, ``last_k``): by event time, then created time (a null created
time sorts first, as the oldest), then arrival order (file order offline, push order online).
``stddev`` and ``var`` are the sample statistics (null for fewer than two values).
``approx_count_distinct`` is a HyperLogLog estimate and ``approx_percentile`` a t-digest style
estimate; their documented error bounds are :data:`APPROX_COUNT_DISTINCT_RELATIVE_ERROR` and
:data:`APPROX_PERCENTILE_RANK_ERROR`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from featurestore.types import (
    Array,
    Bool,
    Bytes,
    Float32,
    Float64,
    Int32,
    Int64,
    PrimitiveType,
    String,
    UnixTimestamp,
    ValueType,
)

_UNITS = (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000))
_UNITS_SMALL = (("ms", 1_000), ("us", 1))


def window_label(window: timedelta | None) -> str:
    """The window as in feature names: its largest whole unit, or ``lifetime``.

    >>> window_label(timedelta(seconds=90)), window_label(timedelta(hours=24)), window_label(None)
    ('90s', '1d', 'lifetime')
    """
    if window is None:
        return "lifetime"
    micros = window // timedelta(microseconds=1)
    for unit, size in _UNITS + _UNITS_SMALL:
        if micros % size == 0:
            return f"{micros // size}{unit}"
    raise AssertionError("unreachable: every window is a whole number of microseconds")


NUMERIC: frozenset[PrimitiveType] = frozenset({Int32, Int64, Float32, Float64})
ORDERED: frozenset[PrimitiveType] = NUMERIC | {String, UnixTimestamp, Bool}
SCALAR: frozenset[PrimitiveType] = ORDERED | {Bytes}

#: ``approx_count_distinct`` estimates within this relative error of the exact distinct count
#: (HyperLogLog; DuckDB's sketch has a standard error of about 1.6%, the bound is ~3 sigma and
#: is what the contract test checks).
APPROX_COUNT_DISTINCT_RELATIVE_ERROR = 0.05
#: ``approx_percentile(p)`` returns a value whose rank among the window's values is within this
#: fraction of ``p`` (t-digest; exact for windows of up to a few hundred values).
APPROX_PERCENTILE_RANK_ERROR = 0.02


@dataclass(frozen=True)
class AggFunction:
    """One aggregation function's contract."""

    name: str
    #: What the column must be, in words (for errors), and the test of it.
    accepts: str
    accepts_type: Callable[[ValueType], bool]
    #: The feature type produced from the column's type.
    result: Callable[[ValueType], ValueType]
    #: Value of a window without any non-null input: 0 for counts, None for the rest.
    empty: int | None = None
    #: Parameters the function takes, with a check returning an error text or None.
    params: Mapping[str, Callable[[object], str | None]] = field(default_factory=dict)
    exact: bool = True


def _scalar(dtype: ValueType) -> bool:
    return dtype in SCALAR


def _numeric(dtype: ValueType) -> bool:
    return dtype in NUMERIC


def _ordered(dtype: ValueType) -> bool:
    return dtype in ORDERED


def _anything(dtype: ValueType) -> bool:
    return True


def _same(dtype: ValueType) -> ValueType:
    return dtype


def _int64(dtype: ValueType) -> ValueType:
    return Int64


def _float64(dtype: ValueType) -> ValueType:
    return Float64


def _sum_type(dtype: ValueType) -> ValueType:
    return Int64 if dtype in (Int32, Int64) else Float64


def _list_of(dtype: ValueType) -> ValueType:
    assert isinstance(dtype, PrimitiveType)
    return Array(dtype)


def _check_percentile(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        return f"percentile must be a number between 0 and 1, got {value!r}"
    return None


def _check_k(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"k must be a whole number of at least 1, got {value!r}"
    return None


_NUM = "a numeric column (Int32, Int64, Float32, Float64)"
_ORD = "a numeric, String, Bool or UnixTimestamp column"
_SCA = "a scalar column (not an Array)"

FUNCTIONS: dict[str, AggFunction] = {
    f.name: f
    for f in (
        AggFunction("count", "any column", _anything, _int64, empty=0),
        AggFunction("sum", _NUM, _numeric, _sum_type),
        AggFunction("mean", _NUM, _numeric, _float64),
        AggFunction("min", _ORD, _ordered, _same),
        AggFunction("max", _ORD, _ordered, _same),
        AggFunction("stddev", _NUM, _numeric, _float64),
        AggFunction("var", _NUM, _numeric, _float64),
        AggFunction("first", "any column", _anything, _same),
        AggFunction("last", "any column", _anything, _same),
        AggFunction("count_distinct", _SCA, _scalar, _int64, empty=0),
        AggFunction("approx_count_distinct", _SCA, _scalar, _int64, empty=0, exact=False),
        AggFunction(
            "approx_percentile",
            _NUM,
            _numeric,
            _float64,
            params={"percentile": _check_percentile},
            exact=False,
        ),
        AggFunction("last_k", _SCA, _scalar, _list_of, params={"k": _check_k}),
    )
}
