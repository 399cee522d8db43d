"""Building write batches for the online store (see the conventions in :mod:`.base`).

The materializer and push both hand the store batches of one row per entity key, with the join
keys and features in their declared types and the timestamps as epoch microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.definitions.feature_view import FeatureView
from featurestore.online.base import CREATED_TS, EVENT_TS


def online_schema(view: FeatureView) -> pa.Schema:
    """The write-batch schema of a view's namespace.

    Join keys without a declared type are left out; they keep the source's type.
    """
    fields = [
        pa.field(key, dtype.to_arrow()) for key, dtype in view.join_key_types.items() if dtype
    ]
    fields.append(pa.field(EVENT_TS, pa.int64()))
    fields.append(pa.field(CREATED_TS, pa.int64()))
    fields.extend(pa.field(f.name, f.dtype.to_arrow()) for f in view.features)
    return pa.schema(fields)


def aggregated_schema(view: FeatureView) -> pa.Schema:
    """The schema of an aggregated view's events (the source columns it aggregates, in
    place of the features of :func:`online_schema`)."""
    fields = [
        pa.field(key, dtype.to_arrow()) for key, dtype in view.join_key_types.items() if dtype
    ]
    fields.append(pa.field(EVENT_TS, pa.int64()))
    fields.append(pa.field(CREATED_TS, pa.int64()))
    fields.extend(pa.field(c.name, c.dtype.to_arrow()) for c in view.columns)
    return pa.schema(fields)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Cast columns whose Arrow type differs from the declared one (DuckDB's string views, a
    source's int32 for an Int64 feature); raises ``pa.ArrowInvalid`` when a value does not fit."""
    columns = []
    changed = False
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        index = schema.get_field_index(name)
        if index >= 0 and column.type != schema.field(index).type:
            column = column.cast(schema.field(index).type)
            changed = True
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names) if changed else batch


def epoch_micros(column: pa.Array) -> pa.Array:
    """Timestamps (any unit or zone; naive means UTC) or dates as int64 epoch microseconds."""
    as_utc = column.cast(pa.timestamp("us", tz="UTC"), safe=False)
    return as_utc.cast(pa.int64())


def latest_per_key(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    """One row per key tuple: the latest event time, then the latest created time (null is
    oldest), then the last row. Keys must not be null. The rows come back in key order."""
    n = table.num_rows
    if n <= 1:
        return table
    position, created = "__fs_position", "__fs_created_or_oldest"
    ordered = table.append_column(position, pa.array(np.arange(n))).append_column(
        created, pc.fill_null(table.column(CREATED_TS), np.iinfo(np.int64).min)
    )
    order = pc.sort_indices(
        ordered,
        sort_keys=[(k, "ascending") for k in keys]
        + [(EVENT_TS, "ascending"), (created, "ascending"), (position, "ascending")],
    )
    ordered = ordered.take(order).drop_columns([position, created])
    if not keys:
        return ordered.slice(n - 1)
    # The last row of each run of equal keys is the latest.
    differs = np.zeros(n - 1, dtype=bool)
    for key in keys:
        column = ordered.column(key)
        differs |= pc.not_equal(column.slice(0, n - 1), column.slice(1)).to_numpy(
            zero_copy_only=False
        )
    return ordered.filter(pa.array(np.append(differs, True)))
