"""Online lookups of aggregated views: each window evaluated at the lookup instant.

A read of an aggregated view fetches each key's state (one round trip, as for plain views) and
evaluates the requested aggregations at ``as_of`` (``t - window < event_ts <= t``) over the
events retention still keeps. Statuses:

* ``PRESENT`` - the value is not null (a count of an empty window is 0, and present);
* ``NULL_VALUE`` - a state is stored but the window has no non-null input (e.g. a mean of
  nothing) or too few (a variance of one value);
* ``NOT_FOUND`` - nothing is stored for the key (or its key is null): null, except that counts
  are 0 as offline, with status ``PRESENT``;
* ``OUTSIDE_MAX_AGE`` - ``as_of`` is so far before the key's newest event that the window
  reaches before the raw events the state keeps (its horizon): null, since the exact value is
  no longer known online (``get_historical_features`` has it).

The reported event time is the newest event of the key at or before ``as_of``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import OnlineStoreError
from featurestore.online.aggregation_state import (
    KeyState,
    StateLayout,
    decode_state,
    evaluate,
    exact_windows,
    newest_at,
)
from featurestore.online.aggregation_views import state_layout
from featurestore.online.response import FieldStatus
from featurestore.types import Array, ValueType

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
PRESENT, NOT_FOUND = FieldStatus.PRESENT, FieldStatus.NOT_FOUND
NULL_VALUE, OUTSIDE_MAX_AGE = FieldStatus.NULL_VALUE, FieldStatus.OUTSIDE_MAX_AGE


@dataclass(frozen=True)
class AggregatedRead:
    """How to answer the requested features of an aggregated view: its state layout, the
    layout of only the requested aggregations (evaluated), and per output a converter of the
    state's value (timestamps are kept as epoch µs) or None."""

    view: FeatureView
    layout: StateLayout
    requested: StateLayout
    converters: tuple[Callable[[Any], Any] | None, ...]
    folded_slots: tuple[int, ...]  # the requested lifetime partials' places in a stored state

    @classmethod
    def of(cls, view: FeatureView, features: Sequence[str]) -> AggregatedRead:
        layout = state_layout(view)
        by_name = {spec.name: spec for spec in layout.specs}
        specs = tuple(by_name[name] for name in features)
        requested = StateLayout(layout.columns, specs, layout.event_id)
        converters = tuple(_converter(view.feature(name).dtype) for name in features)
        slot_of = {layout.specs[index].name: slot for slot, index in enumerate(layout.lifetime)}
        folded = tuple(slot_of[spec.name] for spec in specs if spec.window_us is None)
        return cls(view, layout, requested, converters, folded)

    def answer(
        self,
        outputs: Sequence[str],
        packed: Sequence[bytes | None],
        as_of_us: int,
        kept_from_us: int,
        values: dict[str, list[Any]],
        statuses: dict[str, list[FieldStatus]],
        stamps: dict[str, list[int | None]],
    ) -> None:
        """Fill ``values``, ``statuses`` and ``stamps`` for ``outputs`` from the stored states
        ``packed`` (None: nothing stored), one per entity row."""
        columns: list[list[Any]] = [[] for _ in outputs]
        column_statuses: list[list[FieldStatus]] = [[] for _ in outputs]
        shown: list[int | None] = []
        for blob in packed:
            state = None if blob is None else self._decoded(blob)
            row, row_statuses = self.values(state, as_of_us, kept_from_us)
            shown.append(newest_at(state, as_of_us))
            for j, value in enumerate(row):
                columns[j].append(value)
                column_statuses[j].append(row_statuses[j])
        for j, output in enumerate(outputs):
            values[output] = columns[j]
            statuses[output] = column_statuses[j]
            stamps[output] = shown

    def values(
        self, state: KeyState | None, as_of_us: int, kept_from_us: int
    ) -> tuple[list[Any], list[FieldStatus]]:
        """The requested values of one key's ``state`` (None: nothing stored) at ``as_of_us``,
        as a lookup answers them, and their statuses. ``state`` holds the folded partials of
        every lifetime aggregation of the view (as stored)."""
        if state is None:
            row = evaluate(None, self.requested, as_of_us)
            return row, [NOT_FOUND if value is None else PRESENT for value in row]
        if state.folded:  # the requested lifetime partials, in requested order
            state = replace(state, folded=[state.folded[slot] for slot in self.folded_slots])
        row = evaluate(state, self.requested, as_of_us, kept_from_us)
        exact = exact_windows(state, self.requested, as_of_us)
        values: list[Any] = []
        statuses: list[FieldStatus] = []
        for j, value in enumerate(row):
            if not exact[j]:  # before what the state keeps raw: no value rather than a wrong one
                values.append(None)
                statuses.append(OUTSIDE_MAX_AGE)
                continue
            convert = self.converters[j]
            values.append(value if value is None or convert is None else convert(value))
            statuses.append(NULL_VALUE if value is None else PRESENT)
        return values, statuses

    def _decoded(self, blob: bytes) -> KeyState:
        try:
            return decode_state(blob, self.layout)
        except (ValueError, IndexError) as exc:
            raise OnlineStoreError(
                f"a stored state of {self.view.label} cannot be read ({exc}); "
                "re-materialize the view"
            ) from None


def _timestamp(micros: Any) -> Any:
    return _EPOCH + timedelta(microseconds=micros)


def _converter(dtype: ValueType) -> Callable[[Any], Any] | None:
    if dtype.name == "UnixTimestamp":
        return _timestamp
    if isinstance(dtype, Array) and dtype.element.name == "UnixTimestamp":
        return lambda items: [None if v is None else _timestamp(v) for v in items]
    return None
