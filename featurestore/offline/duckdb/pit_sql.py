"""The point-in-time join, as DuckDB SQL text built from feature requests.

One builder serves every view; it is pure (no connection, no I/O) so its output can be
snapshot-tested. For each entity row and each view it picks, among the source rows with the same
join keys and ``event_ts <= ts`` (and ``event_ts >= ts - ttl`` when the view has a TTL), the row
with the latest event timestamp, then the latest created timestamp (a null created timestamp loses
to any other), then the last in file order (the view's files in the order
:meth:`~featurestore.offline.store_data.StoreData.view_files` lists them: the source's own files
sorted by path, then a push source's pushed files in push order; rows by position): that last
rule makes fully tied rows resolve deterministically, and as the online store does (a later push
wins a full tie there too). Rows older than the view's retention cut-off
(``FeatureRequest.not_before_us``) are never candidates; without retention no condition is added.

All timestamps are compared as integer microseconds since the epoch in UTC (naive timestamps are
taken as UTC), so sub-microsecond differences in nanosecond data are rounded away.

Two strategies, both producing ``(row id, winning values)`` per view:

* **TTL views** bucket time: ``bucket = epoch_us // width`` with ``width = BUCKET_SPAN * ttl``.
  A window ``[ts - ttl, ts]`` spans at most two adjacent buckets, so each entity row is expanded
  into its own bucket and, when the window reaches back over the bucket's start, the one before;
  the feature table then joins on ``(keys, bucket)``: a hash join whose build side is the (small)
  expanded entity frame and whose probe side streams the large feature table with no sort. The
  feature scan is also pruned to ``[min(ts) - ttl, max(ts)]``.
* **Views without TTL** run in two stages (:func:`plan_of`): the bucket join with a window sized
  from the source's density (*near*), then, for the entity rows it leaves without a value, an
  ASOF join over the rows of their keys only (*far*). The ASOF join first keeps one row per
  ``(keys, event_ts)`` (the tie-break winner), since ASOF picks any row among equal times.

``filter_by_created_timestamp`` (Feast's name) makes a row a candidate only once it existed: its
created timestamp must be non-null and ``<= ts``. TTL views add that condition to the bucket join.
Views without TTL cannot settle ties before the join any more (which of two rows wins depends on
``ts``), so they key rows by *availability*, ``greatest(event_ts, created_ts)``: a running
``arg_max`` over availability order gives, at each availability instant, the winner among every
row available by then, and the ASOF join picks the last instant ``<= ts``. Views whose source has
no created column are unaffected, as in Feast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from featurestore.offline.base import FeatureRequest
from featurestore.offline.duckdb.sql_types import sql_type
from featurestore.offline.entity_frame import ROW_ID as ROW_ID  # the builders read it here
from featurestore.types import UnixTimestamp, ValueType

#: Column added to the entity relation: the entity timestamp in epoch microseconds (UTC).
ENTITY_TS = "__fs_ts"

#: Sorts below every real epoch value, so a null created timestamp loses every tie.
NULL_CREATED = -(2**63) + 1
_INTEGER_KEYS = {"Int32", "Int64"}
#: Buckets are this many TTLs wide. Wider buckets mean fewer entity rows need the previous bucket
#: too (a smaller hash table to probe) but more candidates per match; 4 measured best on the
#: benchmark (hourly rows, TTL 2h), about 20% less CPU than buckets one TTL wide.
BUCKET_SPAN = 4


#: Builds one view's CTEs (ending in ``prefix`` with ``(ROW_ID, __fs_val)``), like :func:`view_ctes`.
ViewCtes = Callable[..., list[str]]


@dataclass(frozen=True)
class EntityRelation:
    """What the builder needs to know about the entity frame registered in DuckDB.

    ``relation`` names a table or view that holds the input ``columns`` plus :data:`ROW_ID` and
    :data:`ENTITY_TS`. ``min_ts_us`` / ``max_ts_us`` bound the entity timestamps (``None`` when
    every timestamp is null) and prune the feature scans.
    """

    relation: str
    columns: tuple[str, ...]
    min_ts_us: int | None
    max_ts_us: int | None


@dataclass(frozen=True)
class ViewSource:
    """One request together with the facts about its source that shape the SQL.

    ``files`` are the Parquet files to read (absolute), in file order (as
    :meth:`~featurestore.offline.store_data.StoreData.view_files` lists them; a file's index here
    breaks full ties, so callers must not re-sort them); ``column_types`` maps source column
    names to their DuckDB types. ``near_window_us`` is the window of the near stage of a view
    without TTL (see :func:`plan_of`); the engine sets it from the source's density
    (:func:`near_window_us`), and without it such a view takes the one-stage ASOF plan.
    """

    request: FeatureRequest
    files: tuple[str, ...]
    column_types: Mapping[str, str]
    near_window_us: int | None = None


def quote(name: str) -> str:
    """A SQL identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def string_literal(text: str) -> str:
    """A SQL string literal in single quotes."""
    return "'" + text.replace("'", "''") + "'"


def build_retrieval_sql(
    entity: EntityRelation,
    sources: Sequence[ViewSource],
    *,
    filter_by_created_timestamp: bool = False,
    ctes_for: ViewCtes | None = None,
) -> str:
    """The full retrieval query: every entity row, in input order, with all requested features.

    ``filter_by_created_timestamp``: only rows created by the entity row's time are candidates
    (see the module's docstring). ``ctes_for`` builds each view's CTEs (default
    :func:`view_ctes`; the engine passes one that also knows aggregated views).
    """
    build_view = view_ctes if ctes_for is None else ctes_for
    ctes: list[str] = []
    joins: list[str] = []
    outputs = [f"e.{quote(c)}" for c in entity.columns]
    for index, source in enumerate(sources):
        prefix = f"__fs_v{index}"
        ctes.extend(
            build_view(
                prefix, entity, source, filter_by_created_timestamp=filter_by_created_timestamp
            )
        )
        alias = f"v{index}"
        joins.append(f"LEFT JOIN {prefix} AS {alias} ON {alias}.{ROW_ID} = e.{ROW_ID}")
        request = source.request
        for feature_index, (feature, output) in enumerate(
            zip(request.features, request.output_names, strict=True)
        ):
            value = f"{alias}.__fs_val.__fs_f{feature_index}"
            dtype = request.view.feature(feature).dtype
            source_type = source.column_types.get(request.view.source.source_column(feature), "")
            outputs.append(f"{convert_value(value, dtype, source_type)} AS {quote(output)}")
    with_clause = "WITH\n" + ",\n".join(ctes) + "\n" if ctes else ""
    return (
        with_clause
        + "SELECT\n  "
        + ",\n  ".join(outputs)
        + f"\nFROM {entity.relation} AS e"
        + "".join(f"\n{j}" for j in joins)
        + f"\nORDER BY e.{ROW_ID}"
    )


def view_ctes(
    prefix: str,
    entity: EntityRelation,
    source: ViewSource,
    *,
    filter_by_created_timestamp: bool = False,
) -> list[str]:
    """CTEs ending in one named ``prefix`` with columns ``(ROW_ID, __fs_val)`` for one view."""
    view = source.request.view
    # A source without a created column says nothing about availability: no filter (as Feast).
    by_created = filter_by_created_timestamp and view.source.created_timestamp_column is not None
    ttl_us = (
        None
        if view.ttl is None
        else _micros(view.ttl.days, view.ttl.seconds, view.ttl.microseconds)
    )
    low_us = None if ttl_us is None or entity.min_ts_us is None else entity.min_ts_us - ttl_us
    scan = source_scan(source, low_us=low_us, high_us=entity.max_ts_us, require_created=by_created)
    plan = plan_of(source)
    if plan == "bucket":
        assert ttl_us is not None
        return [
            f"{prefix}_src AS (\n{scan}\n)",
            f"{prefix}_ent AS (\n{entity_keys(entity, source, ttl_us)}\n)",
            _bucket_cte(prefix, source, ttl_us, by_created=by_created),
        ]
    if plan == "asof":
        return [
            f"{prefix}_src AS (\n{scan}\n)",
            f"{prefix}_ent AS (\n{entity_keys(entity, source, None)}\n)",
            *_asof_ctes(prefix, source, by_created=by_created),
        ]
    assert source.near_window_us is not None
    return _near_far_ctes(prefix, entity, source, scan, source.near_window_us, by_created)


#: The near stage of a view without TTL looks back this many average gaps between two rows of a
#: key (see :func:`near_window_us`): wide enough that nearly every entity row finds its value
#: there, narrow enough that few rows per entity row are candidates.
NEAR_WINDOW_GAPS = 4


def plan_of(source: ViewSource) -> str:
    """Which join plan serves a view: the one place that chooses.

    * ``"bucket"``: the view has a TTL; a hash join on ``(keys, time bucket)`` (see the module's
      docstring).
    * ``"near-far"``: no TTL, and the engine measured the source's density
      (``near_window_us``). The **near** stage is the bucket join with the window
      ``[ts - near_window_us, ts]``: when it holds a candidate, its winner is the latest row at
      or before ``ts`` overall, since every row outside is older. Entity rows it leaves without a
      value go to the **far** stage, the ASOF plan below, run only on the source rows of their
      keys up to their latest timestamp (usually a small part of the source). Neither stage sorts
      or groups the whole source, so time and memory stay those of a TTL view.
    * ``"asof"``: no TTL and no density (the builder used on its own): settle ties per
      ``(keys, event_ts)``, then an ASOF join; it aggregates and sorts the whole source.
    """
    if source.request.view.ttl is not None:
        return "bucket"
    return "asof" if source.near_window_us is None else "near-far"


def near_window_us(rows: int, keys: int, span_us: int) -> int:
    """The near window of a view without TTL: :data:`NEAR_WINDOW_GAPS` times the average gap
    between two rows of one key (``span_us * keys / rows``), at least a microsecond.

    ``rows`` and ``keys`` (distinct key tuples) count the scanned source and ``span_us`` is its
    event-time range. Only speed depends on it: any window gives the same answer.
    """
    if rows <= 0 or span_us <= 0:
        return 1
    return max(1, NEAR_WINDOW_GAPS * span_us * max(keys, 1) // rows)


def density_sql(source: ViewSource, high_us: int | None) -> str:
    """Rows, distinct key tuples and event-time range of a view's scanned source, the input of
    :func:`near_window_us`; it reads the key and time columns only."""
    keys = [f"__fs_k{i}" for i in range(len(source.request.view.join_keys))]
    distinct = f"approx_count_distinct(({', '.join(keys)},))" if keys else "1"
    scan = source_scan(source, low_us=None, high_us=high_us)
    return (
        f"SELECT count(*), {distinct}, coalesce(max(__fs_ets) - min(__fs_ets), 0)\n"
        f"FROM (\n{scan}\n)"
    )


def _near_far_ctes(
    prefix: str,
    entity: EntityRelation,
    source: ViewSource,
    scan: str,
    window_us: int,
    by_created: bool,
) -> list[str]:
    keys = [f"__fs_k{i}" for i in range(len(source.request.view.join_keys))]
    equalities = [f"f.{k} = r.{k}" for k in keys]
    group = f"\n  GROUP BY {', '.join(keys)}" if keys else ""
    near = _bucket_cte(
        f"{prefix}_near", source, window_us, by_created=by_created, src=f"{prefix}_src"
    )
    return [
        # Read twice (near stage, far rows), never kept whole.
        f"{prefix}_src AS NOT MATERIALIZED (\n{scan}\n)",
        f"{prefix}_near_ent AS (\n{entity_keys(entity, source, window_us)}\n)",
        # Read twice (the far stage's entity rows, the result): computed once.
        near.replace(" AS (", " AS MATERIALIZED (", 1),
        # Entity rows the near stage left without a value, and how far each key must look.
        f"{prefix}_ent AS MATERIALIZED (\n  SELECT r.*\n  FROM (\n  "
        + entity_keys(entity, source, None).replace("\n", "\n  ")
        + f"\n  ) AS r\n  ANTI JOIN {prefix}_near AS n ON n.{ROW_ID} = r.{ROW_ID}\n)",
        f"{prefix}_reach AS (\n  SELECT {', '.join([*keys, f'max({ENTITY_TS}) AS __fs_reach'])}"
        f"\n  FROM {prefix}_ent{group}\n)",
        f"{prefix}_far_src AS (\n  SELECT f.*\n  FROM {prefix}_src AS f "
        f"SEMI JOIN {prefix}_reach AS r ON "
        + " AND ".join([*equalities, "f.__fs_ets <= r.__fs_reach"])
        + "\n)",
        *_asof_ctes(f"{prefix}_far", source, by_created=by_created, base=prefix),
        f"{prefix} AS (\n  SELECT {ROW_ID}, __fs_val FROM {prefix}_near\n  UNION ALL\n"
        f"  SELECT {ROW_ID}, __fs_val FROM {prefix}_far\n)",
    ]


def _micros(days: int, seconds: int, microseconds: int) -> int:
    return (days * 86_400 + seconds) * 1_000_000 + microseconds


def key_sql_type(dtype: ValueType | None) -> str | None:
    """The SQL type both sides of a join key are cast to, so they compare as typed values."""
    if dtype is None:
        return None
    # Widen integer keys so an int32 column on one side still matches an int64 on the other.
    return "BIGINT" if dtype.name in _INTEGER_KEYS else sql_type(dtype)


def _cast(expression: str, sql_type: str | None) -> str:
    return expression if sql_type is None else f"CAST({expression} AS {sql_type})"


def _epoch_us(column: str) -> str:
    # TimeZone is UTC on the engine's connections, so naive timestamps are read as UTC here.
    return f"epoch_us(CAST({column} AS TIMESTAMPTZ))"


def source_scan(
    source: ViewSource, *, low_us: int | None, high_us: int | None, require_created: bool = False
) -> str:
    """The SELECT over a view's source that every query builds on.

    Columns: ``__fs_k{i}`` (join keys, cast for typed comparison), ``__fs_ets`` (event time, epoch
    µs), ``__fs_cts`` (created time, when the source has one; null as :data:`NULL_CREATED`),
    ``__fs_file`` (several files only: the file's index in ``source.files``), ``__fs_pos`` (the
    row's position in its file) and ``__fs_f{i}`` (the request's features).
    Rows with a null timestamp or join key are dropped, and so are rows older than the request's
    retention cut-off (``not_before_us``, inclusive: a row exactly at the cut-off stays): to every
    query built on this scan they do not exist. ``low_us`` / ``high_us`` (inclusive, either may be
    ``None``) only prune the scan; callers still apply their exact window. ``require_created``
    also drops rows whose created timestamp is null (``filter_by_created_timestamp``).
    """
    view = source.request.view
    src = view.source
    ts_column = quote(src.timestamp_field)
    columns = [
        f"{_cast(quote(src.source_column(key)), key_sql_type(dtype))} AS __fs_k{i}"
        for i, (key, dtype) in enumerate(view.join_key_types.items())
    ]
    columns.append(f"{_epoch_us(ts_column)} AS __fs_ets")
    if src.created_timestamp_column is not None:
        created = _epoch_us(quote(src.created_timestamp_column))
        columns.append(f"coalesce({created}, {NULL_CREATED}) AS __fs_cts")
    if len(source.files) > 1:
        # The file's position in the view's file list, not its path: a push source's pushed files
        # come after its own files whatever their names (see StoreData.view_files).
        columns.append("file_index AS __fs_file")
    columns.append("file_row_number AS __fs_pos")
    columns.extend(
        f"{quote(src.source_column(name))} AS __fs_f{i}"
        for i, name in enumerate(source.request.features)
    )
    conditions = [f"{ts_column} IS NOT NULL"]
    conditions.extend(f"{quote(src.source_column(key))} IS NOT NULL" for key in view.join_keys)
    if require_created and src.created_timestamp_column is not None:
        conditions.append(f"{quote(src.created_timestamp_column)} IS NOT NULL")
    cutoff = source.request.not_before_us
    if cutoff is not None:
        conditions.append(f"{_epoch_us(ts_column)} >= {cutoff}")
        low_us = cutoff if low_us is None else max(low_us, cutoff)
    conditions.extend(
        _prune(ts_column, source.column_types.get(src.timestamp_field, ""), low_us, high_us)
    )
    return (
        "  SELECT "
        + ", ".join(columns)
        + f"\n  FROM {_read_parquet(source.files)}"
        + "\n  WHERE "
        + " AND ".join(conditions)
    )


def _read_parquet(files: Sequence[str]) -> str:
    listed = ", ".join(string_literal(f) for f in files)
    union = ", union_by_name = true" if len(files) > 1 else ""
    return f"read_parquet([{listed}], file_row_number = true{union})"


def _prune(ts_column: str, ts_type: str, low_us: int | None, high_us: int | None) -> list[str]:
    """Bounds on the raw timestamp column that Parquet row-group statistics can use to skip data.

    They are compared in the column's own type so DuckDB pushes them into the scan, and widened by
    a microsecond because nanosecond values are rounded when converted to epoch microseconds; the
    exact window is applied later on the epoch values.
    """
    if not ts_type.startswith("TIMESTAMP"):
        return []
    bounds = []
    if low_us is not None:
        bounds.append(f"{ts_column} >= {_timestamp_literal(low_us - 1, ts_type)}")
    if high_us is not None:
        bounds.append(f"{ts_column} <= {_timestamp_literal(high_us + 1, ts_type)}")
    return bounds


def _timestamp_literal(epoch_us: int, ts_type: str) -> str:
    # make_timestamp(epoch µs) is a naive UTC timestamp; the cast gives the column's own type.
    return f"CAST(make_timestamp({epoch_us}::BIGINT) AS {ts_type})"


def entity_keys(entity: EntityRelation, source: ViewSource, ttl_us: int | None) -> str:
    """The entity rows with a timestamp and every join key, keys cast as the source's are."""
    view = source.request.view
    columns = [f"e.{ROW_ID}", f"e.{ENTITY_TS}"]
    columns.extend(
        f"{_cast('e.' + quote(key), key_sql_type(dtype))} AS __fs_k{i}"
        for i, (key, dtype) in enumerate(view.join_key_types.items())
    )
    relation = f"{entity.relation} AS e"
    conditions = [f"e.{ENTITY_TS} IS NOT NULL"]
    if ttl_us is not None:
        # The row's own bucket, plus the one before when the window [ts - ttl, ts] reaches into it.
        width = ttl_us * BUCKET_SPAN
        columns.append(f"e.{ENTITY_TS} // {width} - s.__fs_d AS __fs_bucket")
        relation += " CROSS JOIN (VALUES (0), (1)) AS s(__fs_d)"
        conditions.append(
            f"(s.__fs_d = 0 OR (e.{ENTITY_TS} - {ttl_us}) // {width} < e.{ENTITY_TS} // {width})"
        )
    conditions.extend(f"e.{quote(key)} IS NOT NULL" for key in view.join_keys)
    return (
        "  SELECT "
        + ", ".join(columns)
        + f"\n  FROM {relation}"
        + "\n  WHERE "
        + " AND ".join(conditions)
    )


def values_struct(source: ViewSource, alias: str) -> str:
    """The request's feature values of a :func:`source_scan` row, as one struct."""
    fields = ", ".join(f"{alias}.__fs_f{i}" for i in range(len(source.request.features)))
    return f"struct_pack({fields})"


def order_struct(source: ViewSource, alias: str, with_event_ts: bool) -> str:
    """The winner's ordering: event time, created time, then position in file order."""
    fields = [f"{alias}.__fs_ets"] if with_event_ts else []
    if source.request.view.source.created_timestamp_column is not None:
        fields.append(f"{alias}.__fs_cts")
    if len(source.files) > 1:
        fields.append(f"{alias}.__fs_file")
    fields.append(f"{alias}.__fs_pos")
    return f"struct_pack({', '.join(fields)})"


def _key_equalities(source: ViewSource) -> list[str]:
    return [f"f.__fs_k{i} = e.__fs_k{i}" for i in range(len(source.request.view.join_keys))]


def _bucket_cte(
    prefix: str, source: ViewSource, ttl_us: int, *, by_created: bool, src: str | None = None
) -> str:
    """The bucket join of ``{prefix}_ent`` with the scan ``src`` (default ``{prefix}_src``),
    ending in a CTE named ``prefix``."""
    # `//` truncates toward zero, so bucket 0 is twice as wide as the others; buckets are still
    # consecutive, monotone and at least a TTL wide, which is all the two-bucket argument needs.
    width = ttl_us * BUCKET_SPAN
    equalities = [*_key_equalities(source), f"f.__fs_ets // {width} = e.__fs_bucket"]
    window = f"f.__fs_ets <= e.{ENTITY_TS} AND f.__fs_ets >= e.{ENTITY_TS} - {ttl_us}"
    if by_created:
        window += f" AND f.__fs_cts <= e.{ENTITY_TS}"
    return (
        f"{prefix} AS (\n"
        f"  SELECT e.{ROW_ID}, arg_max({values_struct(source, 'f')}, "
        f"{order_struct(source, 'f', with_event_ts=True)}) AS __fs_val\n"
        f"  FROM {prefix}_ent AS e JOIN {src or prefix + '_src'} AS f ON "
        + " AND ".join(equalities)
        + "\n"
        f"  WHERE {window}\n"
        f"  GROUP BY e.{ROW_ID}\n"
        ")"
    )


def _asof_ctes(
    prefix: str, source: ViewSource, *, by_created: bool, base: str | None = None
) -> list[str]:
    """The ASOF plan, reading ``{prefix}_src`` and the entity rows ``{base}_ent`` (``base``
    defaults to ``prefix``), ending in a CTE named ``prefix``."""
    base = prefix if base is None else base
    if by_created:
        return _available_asof_ctes(prefix, source, base)
    keys = [f"__fs_k{i}" for i in range(len(source.request.view.join_keys))]
    group = ", ".join([*keys, "__fs_ets"])
    # ASOF picks an arbitrary row among equal event times, so settle those ties first.
    latest = (
        f"{prefix}_latest AS (\n"
        f"  SELECT {group}, arg_max({values_struct(source, 'f')}, "
        f"{order_struct(source, 'f', with_event_ts=False)}) AS __fs_val\n"
        f"  FROM {prefix}_src AS f\n"
        f"  GROUP BY {group}\n"
        ")"
    )
    return [latest, _asof_join(prefix, source, "__fs_ets", base)]


def _available_asof_ctes(prefix: str, source: ViewSource, base: str) -> list[str]:
    keys = [f"__fs_k{i}" for i in range(len(source.request.view.join_keys))]
    group = ", ".join([*keys, "__fs_avail"])
    order = order_struct(source, "f", with_event_ts=True)
    # One row per (keys, availability instant): the best row that became available then.
    columns = [
        *keys,
        "greatest(f.__fs_ets, f.__fs_cts) AS __fs_avail",
        f"arg_max({values_struct(source, 'f')}, {order}) AS __fs_val",
        f"max({order}) AS __fs_ord",
    ]
    available = (
        f"{prefix}_avail AS (\n"
        f"  SELECT {', '.join(columns)}\n"
        f"  FROM {prefix}_src AS f\n"
        f"  GROUP BY {group}\n"
        ")"
    )
    # The best of every row available by each instant: a running arg_max in availability order.
    partition = f"PARTITION BY {', '.join(keys)} " if keys else ""
    latest = (
        f"{prefix}_latest AS (\n"
        f"  SELECT {group}, arg_max(__fs_val, __fs_ord) OVER ({partition}ORDER BY __fs_avail "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __fs_val\n"
        f"  FROM {prefix}_avail\n"
        ")"
    )
    return [available, latest, _asof_join(prefix, source, "__fs_avail", base)]


def _asof_join(prefix: str, source: ViewSource, instant: str, base: str) -> str:
    conditions = [*_key_equalities(source), f"e.{ENTITY_TS} >= f.{instant}"]
    return (
        f"{prefix} AS (\n"
        f"  SELECT e.{ROW_ID}, f.__fs_val\n"
        f"  FROM {base}_ent AS e ASOF JOIN {prefix}_latest AS f ON "
        + " AND ".join(conditions)
        + "\n"
        ")"
    )


def convert_value(value: str, dtype: ValueType, source_type: str) -> str:
    """Cast a winning value to its declared type (``Float32`` comes back as FLOAT, and so on)."""
    if dtype == UnixTimestamp and _is_integer_sql(source_type):
        # Integer sources of a timestamp feature hold epoch seconds.
        return f"to_timestamp({value})"
    return f"CAST({value} AS {sql_type(dtype)})"


_INTEGER_SQL = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}


def _is_integer_sql(sql_type: str) -> bool:
    return sql_type in _INTEGER_SQL or sql_type in {"U" + t for t in _INTEGER_SQL}
