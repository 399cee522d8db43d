"""Every event of an aggregated view in a time range, grouped by entity key: what
materialization folds into each key's online aggregation state. With an event id, only the
first copy of each event to arrive is an event (as retrieval counts it)."""

from __future__ import annotations

from featurestore.offline.duckdb.latest_sql import CREATED_TS_COLUMN as CREATED_TS
from featurestore.offline.duckdb.latest_sql import EVENT_TS_COLUMN as EVENT_TS
from featurestore.offline.duckdb.pit_sql import (
    NULL_CREATED,
    ViewSource,
    convert_value,
    order_struct,
    quote,
    source_scan,
)
from featurestore.offline.duckdb.sql_types import sql_type

#: The events' order among equal times (file order: the file's index in the view's file list,
#: then the row's position), as the online state keeps it.
SEQ = "__fs_seq"


def events_sql(source: ViewSource, after_us: int | None, end_us: int) -> str:
    """Events with ``after_us < event_ts <= end_us`` (no lower bound for None): the join keys
    (declared types), :data:`EVENT_TS`, :data:`CREATED_TS` (epoch µs; a null created time is
    the smallest), :data:`SEQ` (file order) and the view's columns (declared types), ordered by
    key then (event time, created time, file order), so one key's events are contiguous."""
    view = source.request.view
    scan = event_scan(source, after_us, end_us)
    keys = [
        (f"CAST(__fs_k{i} AS {sql_type(dtype)})" if dtype is not None else f"__fs_k{i}")
        + f" AS {quote(key)}"
        for i, (key, dtype) in enumerate(view.join_key_types.items())
    ]
    created = "__fs_cts" if view.source.created_timestamp_column is not None else NULL_CREATED
    file_order = "__fs_file, __fs_pos" if len(source.files) > 1 else "__fs_pos"
    outputs = [
        *keys,
        f"__fs_ets AS {EVENT_TS}",
        f"{created}::BIGINT AS {CREATED_TS}",
        f"row_number() OVER (ORDER BY {file_order}) AS {SEQ}",
    ]
    for index, column in enumerate(view.columns):
        source_type = source.column_types.get(view.source.source_column(column.name), "")
        value = convert_value(f"__fs_f{index}", column.dtype, source_type)
        outputs.append(f"{value} AS {quote(column.name)}")
    condition = f"__fs_ets <= {int(end_us)}"
    if after_us is not None:
        condition += f" AND __fs_ets > {int(after_us)}"
    order = [f"{quote(key)}" for key in view.join_keys] + [EVENT_TS, CREATED_TS, SEQ]
    return (
        "SELECT " + ", ".join(outputs) + f"\nFROM (\n{scan}\n) AS s\nWHERE {condition}\n"
        f"ORDER BY {', '.join(order)}"
    )


def events_count_sql(source: ViewSource, after_us: int | None, end_us: int) -> str:
    """How many events :func:`events_sql` returns, and over how many keys."""
    keys = ", ".join(f"__fs_k{i}" for i in range(len(source.request.view.join_keys)))
    distinct = f"count(DISTINCT ({keys}))" if keys else "least(count(*), 1)"
    condition = f"__fs_ets <= {int(end_us)}"
    if after_us is not None:
        condition += f" AND __fs_ets > {int(after_us)}"
    scan = event_scan(source, after_us, end_us)
    return f"SELECT count(*), {distinct}, NULL\nFROM (\n{scan}\n) AS s\nWHERE {condition}"


def event_scan(source: ViewSource, after_us: int | None, end_us: int | None) -> str:
    """The source scan (:func:`source_scan`), pruned to the range (callers apply their exact
    bounds); with an event id (which the request must read), only the first copy of each event
    to arrive is kept, found among every copy in the source whatever its time, as retrieval
    finds it (:func:`~featurestore.offline.duckdb.agg_sql.first_copy`). The first arrival per
    key and id is one grouped pass over the key, id and order columns of the whole source;
    only the rows in the range are joined to it."""
    view = source.request.view
    in_range = source_scan(source, low_us=after_us, high_us=end_us)
    if view.event_id is None:
        return in_range
    event_id = f"__fs_f{source.request.features.index(view.event_id)}"
    keys = [f"__fs_k{i}" for i in range(len(view.join_keys))]
    every = source_scan(source, low_us=None, high_us=None)
    arrival = order_struct(source, "a", with_event_ts=False)
    grouped = ", ".join([*(f"a.{k}" for k in keys), f"a.{event_id}"])
    matched = " AND ".join(f"f.{c} = c.{c}" for c in [*keys, event_id])
    return (
        f"  SELECT c.*\n  FROM (\n{in_range}\n  ) AS c\n"
        f"  LEFT JOIN (\n    SELECT {grouped}, min({arrival}) AS __fs_first\n"
        f"    FROM (\n{every}\n    ) AS a\n    WHERE a.{event_id} IS NOT NULL\n"
        f"    GROUP BY ALL\n  ) AS f ON {matched}\n"
        f"  WHERE c.{event_id} IS NULL OR {order_struct(source, 'c', with_event_ts=False)} = f.__fs_first"
    )
