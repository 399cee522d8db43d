"""The DuckDB SQL that profiles a table, as text built from plain values (no connection, no I/O).

A profile (:mod:`featurestore.quality.profile`) is computed over a *relation*: a view or subquery
with one row per profiled row, a ``__fs_key`` column that identifies the row (for sampling) and
one ``__fs_c{i}`` column per profiled column, already in the profile's domain: ``DOUBLE`` for
numeric columns (NaN turned into NULL, timestamps as epoch seconds), ``VARCHAR`` for categorical
ones. :func:`view_relation_sql` and :func:`file_relation_sql` build it; the queries below read it.

Exact percentiles of tens of millions of values are what makes profiling expensive: DuckDB's
``quantile_cont`` holds every value and pays a selection per requested point (101 points over the
L workload's 65M rows took 17 s and 1.2 GB per column). So the work is split:

1. a deterministic sample (``hash(__fs_key) % every = 0``, about ``SAMPLE_ROWS`` rows) gives the
   grid points and the top-value candidates cheaply;
2. one scan computes the moments, the approximate distinct counts and, with ``histogram(x,
   boundaries)``, the exact count of values at or below every grid point (and every point of a
   reference's grid);
3. the exact quantiles are then order statistics whose rank is known and whose grid interval is
   known from those counts: one more scan keeps only the values of those few intervals (a few
   percent of the rows) and picks the right ranks with ``quantile_disc``.

Double values are written as ``CAST('repr' AS DOUBLE)``: a bare decimal literal is parsed as a
DECIMAL first and may come back one ulp away from the Python float.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from featurestore.offline.duckdb.pit_sql import (
    NULL_CREATED,
    ROW_ID,
    ViewSource,
    convert_value,
    quote,
    source_scan,
    string_literal,
)
from featurestore.offline.duckdb.sql_types import sql_type
from featurestore.quality.profile import CATEGORICAL, GRID_POINTS, NUMERIC
from featurestore.types import Float32, Float64, UnixTimestamp, ValueType

_NUMERIC_TYPES = {"Int32", "Int64", "Float32", "Float64", "UnixTimestamp"}
_FLOAT_TYPES = {Float32.name, Float64.name}


def column_kind(dtype: ValueType) -> str:
    """``numeric`` or ``categorical`` for a declared type (arrays are categorical)."""
    return NUMERIC if dtype.name in _NUMERIC_TYPES else CATEGORICAL


@dataclass(frozen=True)
class StatsColumn:
    """A column to profile: its profile name, declared type, and its value in that type (SQL)."""

    name: str
    dtype: ValueType
    value_sql: str

    @property
    def kind(self) -> str:
        return column_kind(self.dtype)

    def profiled_sql(self) -> str:
        """The value in the profile's domain (see the module docstring)."""
        if self.kind == CATEGORICAL:
            return f"CAST({self.value_sql} AS VARCHAR)"
        if self.dtype == UnixTimestamp:
            return f"epoch_us({self.value_sql}) / 1000000.0"
        if self.dtype.name in _FLOAT_TYPES:
            # NaN is a missing value here, like NULL (pandas counts it as missing too).
            return f"CASE WHEN isnan({self.value_sql}) THEN NULL ELSE CAST({self.value_sql} AS DOUBLE) END"
        return f"CAST({self.value_sql} AS DOUBLE)"


def column_ref(index: int) -> str:
    """The relation's column holding profiled column ``index``."""
    return f"__fs_c{index}"


def double_literal(value: float) -> str:
    """An exact DOUBLE literal (see the module docstring)."""
    return f"CAST('{value!r}' AS DOUBLE)"


def doubles_literal(values: Sequence[float]) -> str:
    """An exact ``DOUBLE[]`` literal."""
    return "CAST([" + ", ".join(f"'{v!r}'" for v in values) + "] AS DOUBLE[])"


def value_literal(value: float | str, kind: str) -> str:
    """A literal of the profile's domain: DOUBLE for numeric columns, VARCHAR otherwise."""
    if kind == NUMERIC:
        return double_literal(float(value))
    return string_literal(str(value))


# -- relations ------------------------------------------------------------------------------------


def view_relation_sql(
    source: ViewSource, columns: Sequence[StatsColumn], start_us: int | None, end_us: int | None
) -> str:
    """The rows of a view's source with ``start_us <= event time <= end_us`` (inclusive, either
    bound may be ``None``), after the shared scan's rules (null timestamps and keys dropped,
    retention cut-off applied). ``columns[i].value_sql`` reads the scan's ``__fs_f{i}``."""
    scan = source_scan(source, low_us=start_us, high_us=end_us)
    key = "hash(__fs_file, __fs_pos)" if len(source.files) > 1 else "hash(__fs_pos)"
    selected = [f"{key} AS __fs_key"]
    selected += [f"{c.profiled_sql()} AS {column_ref(i)}" for i, c in enumerate(columns)]
    return f"SELECT {', '.join(selected)}\nFROM (\n{scan}\n) AS s\nWHERE {window_condition(start_us, end_us)}"


def table_relation_sql(table: str, columns: Sequence[StatsColumn]) -> str:
    """Every row of a table with a :data:`ROW_ID` column (an aggregated view's values, see
    :mod:`featurestore.offline.duckdb.agg_instants`); ``columns[i].value_sql`` reads its
    columns."""
    selected = [f"hash({ROW_ID}) AS __fs_key"]
    selected += [f"{c.profiled_sql()} AS {column_ref(i)}" for i, c in enumerate(columns)]
    return f"SELECT {', '.join(selected)} FROM {table}"


def window_condition(start_us: int | None, end_us: int | None) -> str:
    """The exact (inclusive) window on a :func:`source_scan`'s event time."""
    conditions = []
    if start_us is not None:
        conditions.append(f"__fs_ets >= {int(start_us)}")
    if end_us is not None:
        conditions.append(f"__fs_ets <= {int(end_us)}")
    return " AND ".join(conditions) or "true"


def view_value_sql(source: ViewSource, index: int, dtype: ValueType) -> str:
    """Feature ``index`` of a :func:`source_scan` row, cast to its declared type."""
    view = source.request.view
    feature = source.request.features[index]
    source_type = source.column_types.get(view.source.source_column(feature), "")
    return convert_value(f"__fs_f{index}", dtype, source_type)


def file_relation_sql(path: str, columns: Sequence[StatsColumn]) -> str:
    """Every row of one Parquet file; ``columns[i].value_sql`` reads the file's own columns."""
    selected = ["hash(file_row_number) AS __fs_key"]
    selected += [f"{c.profiled_sql()} AS {column_ref(i)}" for i, c in enumerate(columns)]
    scan = f"read_parquet({string_literal(path)}, file_row_number = true)"
    return f"SELECT {', '.join(selected)} FROM {scan}"


def file_value_sql(column: str, dtype: ValueType, source_type: str) -> str:
    """A file column cast to its declared type (integer timestamps are epoch seconds)."""
    return convert_value(quote(column), dtype, source_type)


# -- the profiling queries ------------------------------------------------------------------------


def count_sql(relation: str) -> str:
    """The relation's row count."""
    return f"SELECT count(*) FROM {relation}"


def sample_sql(relation: str, columns: int, every: int) -> str:
    """The deterministic sample: rows whose key hashes to 0 modulo ``every`` (all when 1)."""
    selected = ", ".join(column_ref(i) for i in range(columns))
    where = "" if every <= 1 else f" WHERE __fs_key % {int(every)} = 0"
    return f"SELECT {selected} FROM {relation}{where}"


def grid_sql(sample: str, numeric: Sequence[int]) -> str:
    """Per numeric column, its :data:`GRID_POINTS` percentiles over the sample (one row)."""
    points = doubles_literal([k / (GRID_POINTS - 1) for k in range(GRID_POINTS)])
    return (
        "SELECT "
        + ", ".join(f"quantile_cont({column_ref(i)}, {points})" for i in numeric)
        + f" FROM {sample}"
    )


def frequent_sql(relation: str, index: int, limit: int) -> str:
    """The ``limit`` most frequent non-null values of a column, ties by value."""
    ref = column_ref(index)
    return (
        f"SELECT {ref}, count(*) AS n FROM {relation} WHERE {ref} IS NOT NULL "
        f"GROUP BY {ref} ORDER BY n DESC, {ref} LIMIT {int(limit)}"
    )


def ranked_counts_sql(
    relation: str, index: int, kind: str, limit: int, also: Sequence[float | str]
) -> str:
    """Exact counts of every value of a column, kept for the ``limit`` most frequent and for the
    values in ``also`` (a reference's categories): one grouped scan."""
    ref = column_ref(index)
    keep = f"row_number() OVER (ORDER BY n DESC, {ref}) <= {int(limit)}"
    if also:
        keep += f" OR {ref} IN ({', '.join(value_literal(v, kind) for v in also)})"
    return (
        f"SELECT {ref}, count(*) AS n FROM {relation} WHERE {ref} IS NOT NULL "
        f"GROUP BY {ref} QUALIFY {keep}"
    )


def candidate_counts_sql(
    relation: str, index: int, kind: str, candidates: Sequence[float | str]
) -> str:
    """Exact counts of the given values of a column (absent values are left out)."""
    ref = column_ref(index)
    listed = ", ".join(value_literal(v, kind) for v in candidates)
    return f"SELECT {ref}, count(*) AS n FROM {relation} WHERE {ref} IN ({listed}) GROUP BY {ref}"


def summary_sql(
    relation: str, columns: Sequence[StatsColumn], boundaries: Sequence[Sequence[float]]
) -> str:
    """The main scan: ``count(*)``, then per column (in order) ``count, min, max,
    approx_count_distinct`` and, for numeric columns, ``avg, stddev_samp`` and the
    ``histogram`` of the values on ``boundaries[i]`` (``NULL`` when there are none)."""
    selected = ["count(*)"]
    for i, column in enumerate(columns):
        ref = column_ref(i)
        selected += [f"count({ref})", f"min({ref})", f"max({ref})", f"approx_count_distinct({ref})"]
        if column.kind == NUMERIC:
            selected += [f"avg({ref})", f"stddev_samp({ref})"]
            bounds = boundaries[i]
            selected.append(f"histogram({ref}, {doubles_literal(bounds)})" if bounds else "NULL")
    return "SELECT " + ",\n  ".join(selected) + f"\nFROM {relation}"


@dataclass(frozen=True)
class Interval:
    """Values ``lower < x <= upper`` (``None``: unbounded on that side)."""

    lower: float | None
    upper: float | None

    def condition(self, ref: str) -> str:
        parts = []
        if self.lower is not None:
            parts.append(f"{ref} > {double_literal(self.lower)}")
        if self.upper is not None:
            parts.append(f"{ref} <= {double_literal(self.upper)}")
        return " AND ".join(parts) if parts else f"{ref} IS NOT NULL"


def order_statistics_sql(
    relation: str, picks: Sequence[tuple[int, Sequence[Interval], Sequence[float]]]
) -> str:
    """One scan picking order statistics: per ``(column, intervals, fractions)``, the
    ``quantile_disc`` at ``fractions`` of the column's values that fall in ``intervals``."""
    selected = []
    for index, intervals, fractions in picks:
        ref = column_ref(index)
        inside = " OR ".join(f"({interval.condition(ref)})" for interval in intervals)
        points = doubles_literal(fractions)
        selected.append(f"quantile_disc({ref}, {points}) FILTER (WHERE {inside})")
    return "SELECT " + ",\n  ".join(selected) + f"\nFROM {relation}"


# -- reading a window's rows ------------------------------------------------------------------------


def window_rows_sql(source: ViewSource, start_us: int | None, end_us: int | None) -> str:
    """Every source row of a view in the window (not the latest per key): the join keys, the
    event time (TIMESTAMPTZ, named as the source's timestamp field, which no feature may be
    called), then the features, all in their declared types."""
    view = source.request.view
    scan = source_scan(source, low_us=start_us, high_us=end_us)
    outputs = [
        (f"CAST(__fs_k{i} AS {sql_type(dtype)})" if dtype is not None else f"__fs_k{i}")
        + f" AS {quote(key)}"
        for i, (key, dtype) in enumerate(view.join_key_types.items())
    ]
    ts_name = quote(view.source.timestamp_field)
    outputs.append(f"CAST(make_timestamp(__fs_ets) AS TIMESTAMPTZ) AS {ts_name}")
    for index, feature in enumerate(source.request.features):
        dtype = view.feature(feature).dtype
        outputs.append(f"{view_value_sql(source, index, dtype)} AS {quote(feature)}")
    return (
        "SELECT " + ", ".join(outputs) + f"\nFROM (\n{scan}\n) AS s\n"
        f"WHERE {window_condition(start_us, end_us)}"
    )


def window_count_sql(source: ViewSource, start_us: int | None, end_us: int | None) -> str:
    """Rows in the window and their latest created time (epoch µs; NULL without one)."""
    scan = source_scan(source, low_us=start_us, high_us=end_us)
    has_created = source.request.view.source.created_timestamp_column is not None
    created = f"max(nullif(__fs_cts, {NULL_CREATED}))" if has_created else "NULL::BIGINT"
    return (
        f"SELECT count(*), {created}\nFROM (\n{scan}\n) AS s\n"
        f"WHERE {window_condition(start_us, end_us)}"
    )
