"""Statuses of an online lookup's values (see :mod:`featurestore.online.lookup` for what each
means): one view's stored rows turned into values, statuses and shown event times per output
column, from an Arrow read (:func:`row_statuses`) or from packed rows decoded one by one on the
small-lookup path (:func:`small_statuses`); both give the same answers.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa

from featurestore.errors import OnlineStoreError
from featurestore.online.base import EVENT_TS, FOUND
from featurestore.online.response import FieldStatus

if TYPE_CHECKING:
    from featurestore.online.lookup import ViewRead

_OLDEST = -(2**63)  # below every event time: no bound
PRESENT, NOT_FOUND = FieldStatus.PRESENT, FieldStatus.NOT_FOUND
NULL_VALUE, OUTSIDE_MAX_AGE = FieldStatus.NULL_VALUE, FieldStatus.OUTSIDE_MAX_AGE


def row_statuses(
    read: ViewRead,
    result: pa.Table,
    as_of_us: int,
    kept_from: int,
    values: dict[str, list[Any]],
    statuses: dict[str, list[FieldStatus]],
    stamps: dict[str, list[int | None]],
) -> None:
    """Turn one read's rows into values, statuses and event times per output column."""
    # Columns by position: looking a column up by name costs as much as converting it.
    position = {name: i for i, name in enumerate(result.schema.names)}
    found = result.column(position[FOUND]).to_pylist()
    event_ts: list[int | None] = result.column(position[EVENT_TS]).to_pylist()
    rows = len(found)
    oldest = _OLDEST if read.ttl_us is None else as_of_us - read.ttl_us
    # The common case (every row found and in range) is decided with C-level builtins; only
    # otherwise is each row given its own status.
    # Found rows always carry an event time, so min/max see only ints when all(found).
    found_ts = cast(list[int], event_ts)
    all_valid = all(found) and (
        rows == 0 or (max(oldest, kept_from) <= min(found_ts) and max(found_ts) <= as_of_us)
    )
    row_status: list[FieldStatus | None] = []
    shown_ts = event_ts
    if not all_valid:
        for ok, ts in zip(found, event_ts, strict=True):
            if not ok or ts is None or ts > as_of_us or ts < kept_from:
                row_status.append(NOT_FOUND)
            elif ts < oldest:
                row_status.append(OUTSIDE_MAX_AGE)
            else:
                row_status.append(None)
        shown_ts = [
            None if s is NOT_FOUND else t for s, t in zip(row_status, event_ts, strict=True)
        ]
    every_present = [PRESENT] * rows
    for feature, output in zip(read.features, read.outputs, strict=True):
        array = result.column(position[feature])
        column = array.to_pylist()
        if all_valid:
            statuses[output] = (
                every_present
                if array.null_count == 0
                else [PRESENT if v is not None else NULL_VALUE for v in column]
            )
            values[output] = column
        else:
            statuses[output] = [
                s if s is not None else (PRESENT if v is not None else NULL_VALUE)
                for s, v in zip(row_status, column, strict=True)
            ]
            values[output] = [
                v if s is None else None for s, v in zip(row_status, column, strict=True)
            ]
        stamps[output] = shown_ts


def small_statuses(
    read: ViewRead,
    packed: list[bytes | None],
    as_of_us: int,
    kept_from: int,
    values: dict[str, list[Any]],
    statuses: dict[str, list[FieldStatus]],
    stamps: dict[str, list[int | None]],
) -> None:
    """The scalar twin of :func:`row_statuses`: the same statuses from packed rows."""
    decoder = read.decoder
    assert decoder is not None
    oldest = _OLDEST if read.ttl_us is None else as_of_us - read.ttl_us
    # Per row: its status when not servable (None: servable), its shown event time, its values.
    row_status: list[FieldStatus | None] = []
    shown: list[int | None] = []
    rows: list[list[Any] | None] = []
    for row in packed:
        if row is None:
            row_status.append(NOT_FOUND)
            shown.append(None)
            rows.append(None)
            continue
        try:
            event_ts, row_values = decoder.decode(row)
        except (ValueError, struct.error) as exc:
            raise OnlineStoreError(
                f"a stored row of {read.namespace.view.label} cannot be decoded ({exc}); "
                "re-materialize the view"
            ) from None
        # From the lookup's future (not there yet), or older than retention keeps (gone).
        if event_ts > as_of_us or event_ts < kept_from:
            row_status.append(NOT_FOUND)
            shown.append(None)
            rows.append(None)
        else:
            row_status.append(OUTSIDE_MAX_AGE if event_ts < oldest else None)
            shown.append(event_ts)
            rows.append(row_values)
    servable = all(status is None for status in row_status)
    for j, output in enumerate(read.outputs):
        if servable:
            column = [row[j] for row in rows if row is not None]
            statuses[output] = [PRESENT if v is not None else NULL_VALUE for v in column]
        else:
            column = [
                row[j] if status is None and row is not None else None
                for status, row in zip(row_status, rows, strict=True)
            ]
            statuses[output] = [
                status if status is not None else (PRESENT if v is not None else NULL_VALUE)
                for status, v in zip(row_status, column, strict=True)
            ]
        values[output] = column
        stamps[output] = shown
