"""Per-column statistics of a table (a view's rows in a window, or a saved training set).

A profile is plain data: an offline engine with the statistics capability computes it (see
:class:`featurestore.offline.base.SupportsStatistics`; the definitions below follow the DuckDB
engine's), the registry stores it as JSON, and drift detection
(:mod:`featurestore.quality.drift`) compares two of them without touching the data again.

What the numbers mean, exactly:

* **kind** - ``numeric`` for ``Int32``, ``Int64``, ``Float32``, ``Float64`` and
  ``UnixTimestamp`` (profiled as seconds since the epoch, UTC, as a float); ``categorical`` for
  ``String``, ``Bool`` (``"true"`` / ``"false"``), ``Bytes`` and arrays, profiled by their text
  form (DuckDB's cast to VARCHAR: bytes as ``\\xAB`` escapes).
* **rows** counts every row, nulls included; **nulls** counts SQL nulls and, for floats, NaN
  (a NaN is a missing measurement, not a value: it is left out of every other statistic).
  Infinities are values: they sort below / above everything and make the mean infinite.
* **distinct** is DuckDB's ``approx_count_distinct`` of the non-null values: a HyperLogLog
  estimate, exact for a handful of values, typically a few percent off beyond (up to ~10%).
* **min** / **max**: numbers for numeric columns (``int`` for integer types), the smallest and
  largest text for categorical ones.
* **mean** and **stddev** (numeric only): the arithmetic mean and the *sample* standard
  deviation (``ddof=1``, as pandas' ``Series.std``; ``None`` below two values), computed in
  double precision (integers beyond 2**53 are rounded).
* **quantiles** (numeric only): ``p01 p05 p25 p50 p75 p95 p99``, exact, with linear
  interpolation between order statistics (pandas' and numpy's default,
  DuckDB's ``quantile_cont``).
* **top_values**: up to 10 most frequent non-null values with exact counts, ties broken by
  the smaller value; numbers for numeric columns, the text form for categorical ones (``bool``
  for ``Bool``). The ranking is exact when the column has at most
  :data:`EXACT_TOP_DISTINCT` distinct values (or at most :data:`SAMPLE_ROWS` rows); above
  that, the candidates are the most frequent values of a deterministic sample of about
  :data:`SAMPLE_ROWS` rows, counted exactly: a value can only be missed when it is too rare to
  stand out in the sample (e.g. when nearly every value is distinct).
* **grid** / **cumulative** (numeric only): :data:`GRID_POINTS` points at the percentiles
  0, 1, ..., 100 and, for each, the exact number of non-null values ``<=`` it. The points are
  exact percentiles when the table has at most :data:`SAMPLE_ROWS` rows, else percentiles of
  the sample (so each step holds about 1% of the values, not exactly 1%); the counts are
  always exact. Points repeat when values do.
* **categories** (categorical only): up to :data:`MAX_CATEGORIES` most frequent values with
  exact counts (same ranking rule as ``top_values``).
* **probe_cumulative** / **probe_categories**: only in a profile computed against a reference
  column (drift): the exact number of this table's non-null values ``<=`` each point of the
  reference's grid, or equal to each of the reference's categories.

A table with no rows gives a profile with ``rows=0`` and ``None`` / empty statistics.

A **redacted** column keeps only ``rows``, ``nulls`` and ``distinct``: every statistic that
carries values (min, max, mean, stddev, quantiles, top values, grid, categories) was withheld
from its reader or scrubbed by an erasure (see :mod:`featurestore.quality.redaction`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The two kinds of column a profile distinguishes.
NUMERIC, CATEGORICAL = "numeric", "categorical"
#: Points of a numeric column's grid: the percentiles 0, 1, ..., 100.
GRID_POINTS = 101
#: The reported quantiles, as fractions (they are also points of a full-table grid).
QUANTILES: dict[str, float] = {
    "p01": 0.01,
    "p05": 0.05,
    "p25": 0.25,
    "p50": 0.50,
    "p75": 0.75,
    "p95": 0.95,
    "p99": 0.99,
}
#: How many most frequent values ``top_values`` keeps.
TOP_VALUES = 10
#: How many most frequent values a categorical column's ``categories`` keeps.
MAX_CATEGORIES = 100
#: Rows sampled (deterministically) for the grid and the top-value candidates of a larger table.
SAMPLE_ROWS = 250_000
#: Columns with at most this many (approximately counted) distinct values get an exact
#: ranking of their most frequent values; more distinct values go through sampled candidates.
EXACT_TOP_DISTINCT = 100_000


@dataclass(frozen=True)
class ColumnStats:
    """The statistics of one column; the module docstring defines each number exactly."""

    name: str
    kind: str
    dtype: str
    rows: int
    nulls: int
    distinct: int | None
    min: float | str | None
    max: float | str | None
    mean: float | None
    stddev: float | None
    quantiles: dict[str, float]
    top_values: list[tuple[Any, int]]
    grid: list[float]
    cumulative: list[int]
    categories: list[tuple[str, int]]
    probe_cumulative: list[int] | None = None
    probe_categories: list[int] | None = None
    redacted: bool = False

    @property
    def null_rate(self) -> float:
        """Share of rows that are null (or NaN); 0.0 for an empty table."""
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def values(self) -> int:
        """Number of non-null values."""
        return self.rows - self.nulls

    @classmethod
    def empty(cls, name: str, kind: str, dtype: str, rows: int = 0) -> ColumnStats:
        """A column with no non-null values (``rows`` of them null)."""
        return cls(
            name=name,
            kind=kind,
            dtype=dtype,
            rows=rows,
            nulls=rows,
            distinct=0 if rows else None,
            min=None,
            max=None,
            mean=None,
            stddev=None,
            quantiles={},
            top_values=[],
            grid=[],
            cumulative=[],
            categories=[],
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite floats of numeric columns become ``"inf"``, ``"nan"``)."""
        numeric = self.kind == NUMERIC
        number = _encode if numeric else _same
        return {
            "name": self.name,
            "kind": self.kind,
            "dtype": self.dtype,
            "rows": self.rows,
            "nulls": self.nulls,
            "distinct": self.distinct,
            "min": number(self.min),
            "max": number(self.max),
            "mean": _encode(self.mean),
            "stddev": _encode(self.stddev),
            "quantiles": {k: _encode(v) for k, v in self.quantiles.items()},
            "top_values": [[number(v), n] for v, n in self.top_values],
            "grid": [_encode(v) for v in self.grid],
            "cumulative": list(self.cumulative),
            "categories": [[v, n] for v, n in self.categories],
            "probe_cumulative": _copy(self.probe_cumulative),
            "probe_categories": _copy(self.probe_categories),
            "redacted": self.redacted,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnStats:
        """The inverse of :meth:`to_dict`."""
        numeric = data["kind"] == NUMERIC
        number = _decode if numeric else _same
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            dtype=str(data["dtype"]),
            rows=int(data["rows"]),
            nulls=int(data["nulls"]),
            distinct=None if data.get("distinct") is None else int(data["distinct"]),
            min=number(data.get("min")),
            max=number(data.get("max")),
            mean=_decode(data.get("mean")),
            stddev=_decode(data.get("stddev")),
            quantiles={str(k): float(_decode(v)) for k, v in data.get("quantiles", {}).items()},
            top_values=[(number(v), int(n)) for v, n in data.get("top_values", [])],
            grid=[float(_decode(v)) for v in data.get("grid", [])],
            cumulative=[int(n) for n in data.get("cumulative", [])],
            categories=[(str(v), int(n)) for v, n in data.get("categories", [])],
            probe_cumulative=_copy(data.get("probe_cumulative")),
            probe_categories=_copy(data.get("probe_categories")),
            redacted=bool(data.get("redacted", False)),
        )


@dataclass(frozen=True)
class TableProfile:
    """The statistics of every profiled column of one table, and how long they took.

    ``rows`` is the table's row count; ``columns`` maps column names (feature names for a view,
    the file's column names for a saved dataset) to their :class:`ColumnStats`.
    """

    rows: int
    columns: dict[str, ColumnStats] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "rows": self.rows,
            "seconds": self.seconds,
            "columns": {name: column.to_dict() for name, column in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableProfile:
        """The inverse of :meth:`to_dict`."""
        return cls(
            rows=int(data["rows"]),
            seconds=float(data.get("seconds", 0.0)),
            columns={
                str(name): ColumnStats.from_dict(column)
                for name, column in data.get("columns", {}).items()
            },
        )


def _encode(value: Any) -> Any:
    # JSON has no infinities or NaN; their names keep a stored profile loadable anywhere.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        return float(value)
    return value


def _same(value: Any) -> Any:
    return value


def _copy(values: list[int] | None) -> list[int] | None:
    return None if values is None else [int(n) for n in values]
