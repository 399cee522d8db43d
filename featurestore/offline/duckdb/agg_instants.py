"""An aggregated view's values over a window of time, as statistics, validation and drift read
them: its aggregations evaluated point-in-time at every *instant* of the window, one row per key
and distinct event time of that key in the window (after event-id deduplication).

    instants = register_instants(connection, source, start_us, end_us, "__fs_instants_0")
    connection.execute(f"CREATE TEMP TABLE values AS {values_sql(instants, source)}")

Why those instants: an aggregated feature has no rows of its own, only values at instants, and
the instants at which a key's events happen are when its values change, so they are the values
a model reading the view at those events would see (what a training set built from the events
holds). Each value is computed exactly as :mod:`.agg_sql` computes a retrieval's (its windows
reach back before the window's start), so the profile equals a profile of
``get_historical_features`` over those entity rows.
"""

from __future__ import annotations

from dataclasses import replace

import duckdb

from featurestore.offline.duckdb.agg_sql import retrieval_ctes
from featurestore.offline.duckdb.events_sql import event_scan
from featurestore.offline.duckdb.pit_sql import (
    ENTITY_TS,
    ROW_ID,
    EntityRelation,
    ViewSource,
    build_retrieval_sql,
    quote,
)
from featurestore.offline.duckdb.sql_types import sql_type
from featurestore.offline.duckdb.stats_sql import window_condition


def instants_sql(source: ViewSource, start_us: int | None, end_us: int | None) -> str:
    """The distinct ``(keys, event time)`` of the view's source (first copies only, with an
    event id) with ``start_us <= event time <= end_us`` (inclusive, either may be open): the
    join keys (named and typed as the view declares them), the event time as a timestamp named
    as the source's timestamp field, :data:`ENTITY_TS` (epoch µs) and :data:`ROW_ID` (by key,
    then time)."""
    view = source.request.view
    columns = (view.event_id,) if view.event_id is not None else ()
    request = replace(source.request, features=columns, output_names=columns)
    scan = event_scan(replace(source, request=request), start_us, end_us)
    keys = [
        (f"CAST(__fs_k{i} AS {sql_type(dtype)})" if dtype is not None else f"__fs_k{i}")
        + f" AS {quote(key)}"
        for i, (key, dtype) in enumerate(view.join_key_types.items())
    ]
    distinct = ", ".join([*keys, f"__fs_ets AS {ENTITY_TS}"])
    order = ", ".join([*(quote(k) for k in view.join_keys), ENTITY_TS])
    ts_name = quote(view.source.timestamp_field)
    return (
        f"SELECT *, CAST(make_timestamp({ENTITY_TS}) AS TIMESTAMPTZ) AS {ts_name}, "
        f"row_number() OVER (ORDER BY {order}) - 1 AS {ROW_ID}\n"
        f"FROM (\n  SELECT DISTINCT {distinct}\n  FROM (\n{scan}\n  ) AS s\n"
        f"  WHERE {window_condition(start_us, end_us)}\n) AS i"
    )


def register_instants(
    connection: duckdb.DuckDBPyConnection,
    source: ViewSource,
    start_us: int | None,
    end_us: int | None,
    name: str,
) -> EntityRelation:
    """The instants of :func:`instants_sql` as a temporary table ``name`` (on ``connection``),
    described as the entity relation of a retrieval."""
    connection.execute(f"CREATE TEMP TABLE {name} AS {instants_sql(source, start_us, end_us)}")
    bounds = connection.execute(f"SELECT min({ENTITY_TS}), max({ENTITY_TS}) FROM {name}").fetchone()
    low, high = bounds if bounds is not None else (None, None)
    view = source.request.view
    columns = (ROW_ID, *view.join_keys, view.source.timestamp_field)
    return EntityRelation(relation=name, columns=columns, min_ts_us=low, max_ts_us=high)


def values_sql(instants: EntityRelation, source: ViewSource) -> str:
    """Every instant with the requested aggregations' values there (named as the features),
    ordered by :data:`ROW_ID`: the retrieval of :mod:`.agg_sql` with the instants as entity
    rows."""
    return build_retrieval_sql(instants, [source], ctes_for=retrieval_ctes)
