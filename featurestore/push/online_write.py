"""Rows of one feature view written straight to its online namespace: Feast's
``write_to_online_store``.

    write = online_write_batch(view, {"driver_id": [1001], "event_timestamp": ["2026-10-01T12:00"],
                                      "conv_rate": [0.5], "acc_rate": [0.9], "trips": [7]})

Unlike a push, which names a push source and uses its columns, these rows use the view's own
names: its join keys and features, the event timestamp under the source's timestamp field or
``event_timestamp``, and optionally the created timestamp under the source's created column or
``created`` (Feast's client sends those two names whatever the source calls them). A missing or
null created timestamp is the moment of the write, so a later write of the same event time wins.
Values are converted to the declared types without loss, as a push's are (:mod:`.frame`);
anything else is a :class:`~featurestore.errors.PushError` raised before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import PushError
from featurestore.online.base import CREATED_TS, EVENT_TS, WriteResult
from featurestore.online.batches import conform, epoch_micros, latest_per_key, online_schema
from featurestore.push.frame import (
    PushInput,
    check_not_null,
    columns_of,
    convert_column,
    infer_array,
    row_count,
)

__all__ = [
    "CREATED_COLUMN",
    "EVENT_COLUMN",
    "OnlineWrite",
    "OnlineWriteReport",
    "WriteValidation",
    "online_write_batch",
]

#: The timestamp columns' names Feast's client sends, whatever the view's source calls them.
EVENT_COLUMN, CREATED_COLUMN = "event_timestamp", "created"

_UTC_MICROS = pa.timestamp("us", tz="UTC")


#: Sees every written row's features (named and typed as the view declares them) before
#: anything is written, with the view and its version; raises to stop the write.
WriteValidation = Callable[[FeatureView, int, pa.Table], None]


@dataclass(frozen=True)
class OnlineWrite:
    """Rows checked and converted: every row's ``features`` (for validation) and the view's
    write ``batch`` (one row per entity key)."""

    batch: pa.RecordBatch
    features: pa.Table
    rows: int
    ignored_columns: list[str]


@dataclass
class OnlineWriteReport:
    """What a write to one view's online namespace did."""

    view: str
    version: int
    rows: int
    keys: int
    result: WriteResult = field(default_factory=WriteResult)
    ignored_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as the REST service answers it."""
        return {
            "feature_view": self.view,
            "version": self.version,
            "rows": self.rows,
            "keys": self.keys,
            "written": self.result.written,
            "skipped_older": self.result.skipped_older,
            "expired": self.result.expired,
            "ignored_columns": self.ignored_columns,
        }


def online_write_batch(
    view: FeatureView, data: PushInput, *, now: datetime | None = None
) -> OnlineWrite:
    """Check and convert ``data`` for ``view``; raises :class:`PushError` naming the column."""
    label = f"write to {view.label} online"
    given = columns_of(data, label)
    rows = row_count(given, label)
    source = view.source
    stamp = _first_present(given, source.timestamp_field, EVENT_COLUMN)
    created = _first_present(given, source.created_timestamp_column, CREATED_COLUMN)
    required = [*view.join_keys, *view.feature_names]
    missing = [name for name in required if name not in given]
    if stamp is None:
        missing.insert(0, source.timestamp_field)
    if missing:
        raise PushError(
            f"{label}: missing column(s) {missing}; the rows carry the event timestamp "
            f"({source.timestamp_field!r} or {EVENT_COLUMN!r}), every join key and every "
            f"feature: {required}"
        )
    assert stamp is not None
    schema = online_schema(view)
    columns: dict[str, pa.Array] = {}
    for key in view.join_keys:
        what = f"{label}: join key {key!r}"
        index = schema.get_field_index(key)
        columns[key] = (
            convert_column(given[key], schema.field(index).type, what)
            if index >= 0
            else infer_array(given[key], what)
        )
        check_not_null(columns[key], what)
    event = convert_column(given[stamp], _UTC_MICROS, f"{label}: column {stamp!r}")
    check_not_null(event, f"{label}: column {stamp!r}")
    columns[EVENT_TS] = epoch_micros(event)
    columns[CREATED_TS] = epoch_micros(_created(given, created, rows, label, now))
    for feature in view.features:
        what = f"{label}: feature {feature.name!r}"
        columns[feature.name] = convert_column(given[feature.name], feature.dtype.to_arrow(), what)
    used = {*columns, stamp, created}
    ignored = [name for name in given if name not in used]
    latest = latest_per_key(pa.table(columns), view.join_keys).combine_chunks()
    batches = latest.to_batches()
    batch = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=latest.schema)
    try:
        batch = conform(batch, schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise PushError(
            f"{label}: a value does not fit the type the view declares: {exc}"
        ) from None
    features = pa.table({f.name: columns[f.name] for f in view.features})
    return OnlineWrite(batch, features, rows, ignored)


def _first_present(given: Mapping[str, Any], *names: str | None) -> str | None:
    return next((name for name in names if name is not None and name in given), None)


def _created(
    given: Mapping[str, Any], column: str | None, rows: int, label: str, now: datetime | None
) -> pa.Array:
    """Created timestamps: the given ones, the moment of the write where missing or null."""
    moment = pa.scalar(now if now is not None else datetime.now(timezone.utc), _UTC_MICROS)
    if column is None:
        return pa.array([moment.as_py()] * rows, _UTC_MICROS)
    stamps = convert_column(given[column], _UTC_MICROS, f"{label}: column {column!r}")
    return pc.fill_null(stamps, moment)
