"""The "latest row per entity" query that materialization runs, as DuckDB SQL text.

It is built on the same source scan and the same winner ordering as the point-in-time join
(:mod:`featurestore.offline.duckdb.pit_sql`): latest event time, then latest created time (a null created
time loses every tie), then last in file order. So the row materialized for a key is exactly the
row a historical retrieval at the window's end picks among the same candidates; the window's
retention cut-off (``LatestWindow.not_before_us``) drops old rows in that shared scan too.

Output columns follow the online store's write conventions (:mod:`featurestore.online.base`): the
join keys under their own names, ``__fs_event_ts`` and ``__fs_created_ts`` (int64 epoch µs, UTC;
null when the source has no created column or the row's is null), then every feature cast to its
declared type.
"""

from __future__ import annotations

from collections.abc import Sequence

from featurestore.definitions.feature_view import FeatureView
from featurestore.offline.base import LatestWindow
from featurestore.offline.duckdb.pit_sql import (
    NULL_CREATED,
    ViewSource,
    convert_value,
    order_struct,
    quote,
    source_scan,
    string_literal,
    values_struct,
)
from featurestore.offline.duckdb.sql_types import sql_type
from featurestore.types import ValueType

#: Per-key statistics the engine reads before streaming, then drops: how many source rows
#: qualified, and the latest created time among them (for the watermark).
CANDIDATES_COLUMN = "__fs_candidates"
MAX_CREATED_COLUMN = "__fs_max_created"
#: Output column names, equal to the online store's :data:`~featurestore.online.base.EVENT_TS`
#: and :data:`~featurestore.online.base.CREATED_TS` (the offline package does not import online).
EVENT_TS_COLUMN = "__fs_event_ts"
CREATED_TS_COLUMN = "__fs_created_ts"


def build_latest_sql(source: ViewSource, window: LatestWindow) -> str:
    """One row per join-key tuple: the latest qualifying source row, shaped for an online write.

    A view without entities (a global view) yields at most one row. Besides the online columns,
    each row carries :data:`CANDIDATES_COLUMN` and :data:`MAX_CREATED_COLUMN`.
    """
    view = source.request.view
    keys = [f"__fs_k{i}" for i in range(len(view.join_keys))]
    conditions = [f"__fs_ets <= {window.end_us}"]
    if window.start_us is not None:
        conditions.append(f"__fs_ets >= {window.start_us}")
    if window.changed_after is not None:
        event_after, created_after = window.changed_after
        if view.source.created_timestamp_column is not None:
            # No created watermark yet (none seen): any row with a created time counts as new.
            after = NULL_CREATED if created_after is None else created_after
            conditions.append(f"(__fs_ets > {event_after} OR __fs_cts > {after})")
        else:
            conditions.append(f"__fs_ets > {event_after}")
    # Late rows may carry any old event time, so only the upper bound can prune the scan.
    low_us = window.start_us if window.changed_after is None else None
    scan = source_scan(source, low_us=low_us, high_us=window.end_us)
    # The winner's ordering struct starts with its event (and created) time: max() of it is the
    # winner's, read back below, without a second pass.
    order = order_struct(source, "f", with_event_ts=True)
    has_created = view.source.created_timestamp_column is not None
    max_created = f"nullif(max(__fs_cts), {NULL_CREATED})" if has_created else "NULL::BIGINT"
    grouped = (
        "  SELECT "
        + ", ".join(
            [
                *keys,
                f"arg_max({values_struct(source, 'f')}, {order}) AS __fs_val",
                f"max({order}) AS __fs_ord",
                f"count(*) AS {CANDIDATES_COLUMN}",
                f"{max_created} AS {MAX_CREATED_COLUMN}",
            ]
        )
        + "\n  FROM __fs_src AS f"
        + "\n  WHERE "
        + " AND ".join(conditions)
        + (f"\n  GROUP BY {', '.join(keys)}" if keys else "\n  HAVING count(*) > 0")
    )
    # Keys were widened for comparison in the scan; they go online in their declared types.
    outputs = [
        f"{_declared(f'__fs_k{i}', dtype)} AS {quote(key)}"
        for i, (key, dtype) in enumerate(view.join_key_types.items())
    ]
    outputs.append(f"__fs_ord.__fs_ets AS {EVENT_TS_COLUMN}")
    created = f"nullif(__fs_ord.__fs_cts, {NULL_CREATED})" if has_created else "NULL::BIGINT"
    outputs.append(f"{created} AS {CREATED_TS_COLUMN}")
    for index, feature in enumerate(source.request.features):
        dtype = view.feature(feature).dtype
        source_type = source.column_types.get(view.source.source_column(feature), "")
        value = convert_value(f"__fs_val.__fs_f{index}", dtype, source_type)
        outputs.append(f"{value} AS {quote(feature)}")
    outputs.extend([CANDIDATES_COLUMN, MAX_CREATED_COLUMN])
    return (
        f"WITH\n__fs_src AS (\n{scan}\n),\n__fs_latest AS (\n{grouped}\n)\n"
        + "SELECT\n  "
        + ",\n  ".join(outputs)
        + "\nFROM __fs_latest"
    )


def _declared(column: str, dtype: ValueType | None) -> str:
    return column if dtype is None else f"CAST({column} AS {sql_type(dtype)})"


def build_key_sample_sql(view: FeatureView, files: Sequence[str], sample: int, seed: int) -> str:
    """Up to ``sample`` distinct non-null key tuples of the view's source files.

    Ordering by a seeded hash (then the keys, for hash ties) makes the sample uniform-looking and
    reproducible without pulling every key out of DuckDB.
    """
    keys = view.join_keys
    listed = ", ".join(string_literal(f) for f in files)
    union = ", union_by_name = true" if len(files) > 1 else ""
    selected = ", ".join(f"{quote(view.source.source_column(k))} AS {quote(k)}" for k in keys)
    not_null = " AND ".join(f"{quote(k)} IS NOT NULL" for k in keys)
    columns = ", ".join(quote(k) for k in keys)
    return (
        f"SELECT {columns} FROM (SELECT DISTINCT {selected} FROM read_parquet([{listed}]{union})) "
        f"WHERE {not_null} ORDER BY hash({columns}, {int(seed)}), {columns} LIMIT {int(sample)}"
    )
