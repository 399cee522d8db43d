"""A brute-force oracle of the point-in-time join, written from the design's "Semantics" text.

It loops over every entity row and every source row, in plain Python, with no cleverness: any
offline engine must produce exactly what :func:`expected_frame` produces.

For each entity row (join keys, ts) and each requested view:

* candidates are source rows with equal join keys (compared as typed values; a null key never
  matches), a non-null event timestamp ``<= ts`` and, when the view has a TTL, ``>= ts - ttl``;
  with a retention cut-off, rows whose event timestamp is before it are never candidates;
* the winner has the latest event timestamp, then the latest created timestamp (a null created
  timestamp loses to any other), then comes last in file order (the order of ``source_rows``: the source's files sorted by path,
  then a push source's pushed files in push order);
* with ``filter_by_created_timestamp``, and when the view's source has a created column, a row
  is a candidate only if its created timestamp is non-null and ``<= ts`` (it existed by then);
* no candidate means nulls; naive timestamps are UTC, aware ones are converted to UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from featurestore.definitions.feature_view import FeatureView


@dataclass(frozen=True)
class OracleRequest:
    """One view's request: the view, its source rows in file order, feature -> output name, and
    the retention cut-off (None: none)."""

    view: FeatureView
    source_rows: Sequence[Mapping[str, Any]]
    outputs: Mapping[str, str]
    not_before: datetime | None = None


def to_utc(value: datetime | None) -> datetime | None:
    """Naive timestamps are UTC; aware ones are converted to UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def winner(
    view: FeatureView,
    source_rows: Sequence[Mapping[str, Any]],
    keys: Mapping[str, Any],
    ts: datetime | None,
    not_before: datetime | None = None,
    filter_by_created_timestamp: bool = False,
) -> Mapping[str, Any] | None:
    """The source row that serves an entity row with join keys ``keys`` at time ``ts``, if any,
    among rows not older than ``not_before`` (and, with ``filter_by_created_timestamp``, created
    by ``ts``)."""
    if ts is None:
        return None
    ts = to_utc(ts)
    assert ts is not None
    source = view.source
    best: Mapping[str, Any] | None = None
    best_order: tuple[Any, ...] | None = None
    for position, row in enumerate(source_rows):
        matches = all(
            keys[k] is not None
            and row[source.source_column(k)] is not None
            and keys[k] == row[source.source_column(k)]
            for k in view.join_keys
        )
        event = to_utc(row[source.timestamp_field])
        if not matches or event is None or event > ts:
            continue
        if view.ttl is not None and event < ts - view.ttl:
            continue
        if not_before is not None and event < to_utc(not_before):
            continue
        created = (
            to_utc(row[source.created_timestamp_column])
            if source.created_timestamp_column
            else None
        )
        if (
            filter_by_created_timestamp
            and source.created_timestamp_column
            and (created is None or created > ts)
        ):
            continue
        # (has created, created) makes a null created timestamp lose to any real one.
        order = (
            event,
            created is not None,
            created or datetime.min.replace(tzinfo=timezone.utc),
            position,
        )
        if best_order is None or order > best_order:
            best, best_order = row, order
    return best


def expected_frame(
    entity_rows: Sequence[Mapping[str, Any]],
    timestamp_column: str,
    requests: Sequence[OracleRequest],
    filter_by_created_timestamp: bool = False,
) -> list[dict[str, Any]]:
    """Every entity row, in order, extended with each request's feature values (or None)."""
    result: list[dict[str, Any]] = []
    for entity_row in entity_rows:
        out = dict(entity_row)
        for request in requests:
            view = request.view
            keys = {k: entity_row[k] for k in view.join_keys}
            row = winner(
                view,
                request.source_rows,
                keys,
                entity_row[timestamp_column],
                request.not_before,
                filter_by_created_timestamp,
            )
            for feature, output in request.outputs.items():
                out[output] = None if row is None else row[view.source.source_column(feature)]
        result.append(out)
    return result
