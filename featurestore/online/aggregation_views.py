"""Aggregated views online: their state layout, and events written into their states.

A view with ``aggregations`` stores, per entity key, an aggregation state (see
:mod:`featurestore.online.aggregation_state`) instead of a latest row, under the same store key.
Two writers keep it:

* materialization (:func:`materialize_events`) rebuilds each key's state from the offline
  events up to the run's end, keeping events already pushed after that end, and the streamed
  events after the newest stream position the engine's read holds (merged online, but their
  offline file was published after the engine listed the files), so re-running it is
  idempotent and leaves the state equal to the offline data plus what the stream has merged;
* pushes (:func:`push_events`) merge their events into the state at once: the next lookup sees
  them. Late events update every window they fall in. With the view's ``event_id``, copies of
  one event count once: the first to arrive (least created time, then order), as offline, so a
  replay is not counted again; without one, a replayed push counts twice (at-least-once);
* a stream consumer's batches are pushes whose events carry their stream positions: each key's
  state records, in the same atomic update as the events, the newest position it merged, and an
  event at or before it is a replay (the consumer killed between the online write and the
  acknowledgement gets the batch again) and is skipped, at any age and with or without
  ``event_id``. One view reads one stream source (one ordered topic), and a consumer applies
  its batches in stream order, so one position per key is enough.

    layout = state_layout(view)
    push_events(store, namespace, events_by_key(view, table, seq_start=next_push_seq(rows)))
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import pyarrow as pa

from featurestore.definitions.feature_view import FeatureView
from featurestore.errors import OnlineStoreError
from featurestore.online.aggregate_partials import AggregateSpec
from featurestore.online.aggregation_state import (
    Event,
    KeyState,
    StateLayout,
    add_events,
    decode_state,
    encode_state,
    rebuild,
)
from featurestore.online.base import (
    CREATED_TS,
    EVENT_TS,
    Namespace,
    OnlineStore,
    StoredState,
    SupportsStateUpdates,
)
from featurestore.online.codec import encode_keys

#: The order column of materialized events (file order), as the offline engine names it.
SEQ = "__fs_seq"
#: Null created times sort first, as offline (the offline engine's value for them).
NULL_CREATED = -(2**63) + 1
#: Told each state a materialization builds (its entity key, then the state), e.g. to validate
#: the values the run leaves online. A store may build a key's state more than once (a retry
#: after a concurrent write): the last call for a key is the state stored.
StateBuilt = Callable[[bytes, KeyState], None]


@lru_cache(maxsize=256)
def _layout(spec: tuple[Any, ...]) -> StateLayout:
    columns, aggregates, event_id = spec
    return StateLayout(tuple(columns), tuple(aggregates), event_id)


def state_layout(view: FeatureView) -> StateLayout:
    """The layout of ``view``'s online state: its columns in declaration order, its
    aggregations, its event id column."""
    types = {c.name: c.dtype for c in view.columns}
    aggregates = tuple(
        AggregateSpec(
            name=agg.name,
            column=agg.column,
            function=agg.function,
            window_us=agg.window_us,
            percentile=agg.percentile if "percentile" in agg.params else None,
            k=agg.k if "k" in agg.params else None,
            integer_sum=types[agg.column].name in ("Int32", "Int64"),
        )
        for agg in view.aggregations
    )
    return _layout((tuple(types), aggregates, view.event_id))


def stores_states(store: OnlineStore, view: FeatureView) -> SupportsStateUpdates:
    """``store`` as a state store, or an error naming the view when it cannot hold states."""
    if not isinstance(store, SupportsStateUpdates):
        raise OnlineStoreError(
            f"{view.label} is aggregated, and the online store {store.identity} cannot update "
            "aggregation states; use the sqlite or redis online store"
        )
    return store


_last_push_seq = 0
_seq_lock = threading.Lock()


def next_push_seq(rows: int) -> int:
    """The order number of a push's first event (the next ``rows`` are the push's): after every
    materialized event (those count from 1 in file order) and after this process's earlier
    pushes (the clock's nanoseconds, never going back)."""
    global _last_push_seq
    with _seq_lock:
        start = max(time.time_ns(), _last_push_seq)
        _last_push_seq = start + rows
    return start


def events_by_key(
    view: FeatureView,
    table: pa.Table | pa.RecordBatch,
    *,
    seq_start: int | None = None,
    positions: Sequence[tuple[int, int]] | None = None,
) -> dict[bytes, list[Event]]:
    """The events of ``table`` grouped by encoded entity key. ``table`` has the join keys,
    :data:`EVENT_TS`, :data:`CREATED_TS` (int64 µs, null allowed) and the view's columns; its
    :data:`SEQ` column orders ties, or row ``i`` gets ``seq_start + i``; row ``i`` came from
    stream position ``positions[i]`` when given. Rows with a null join key or event time are
    not events of any key (as offline)."""
    layout = state_layout(view)
    keys = encode_keys(table, view.join_keys).to_pylist()
    stamps = table.column(EVENT_TS).to_pylist()
    created = table.column(CREATED_TS).to_pylist()
    if seq_start is None:
        seqs = table.column(SEQ).to_pylist()
    else:
        seqs = list(range(seq_start, seq_start + table.num_rows))
    columns = [_python_values(table.column(name)) for name in layout.columns]
    ids = columns[layout.column_index(layout.event_id)] if layout.event_id else None
    out: dict[bytes, list[Event]] = {}
    for i, key in enumerate(keys):
        if key is None or stamps[i] is None:
            continue
        event = Event(
            stamps[i],
            NULL_CREATED if created[i] is None else created[i],
            seqs[i],
            tuple(column[i] for column in columns),
            None if ids is None else ids[i],
            None if positions is None else positions[i],
        )
        out.setdefault(key, []).append(event)
    return out


def _python_values(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """Values as the state keeps them: timestamps as epoch µs, the rest as Python values."""
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("us", tz=column.type.tz)).cast(pa.int64())
    values: list[Any] = column.to_pylist()
    return values


def _stored(state: KeyState, layout: StateLayout) -> StoredState:
    newest = state.newest
    needed = layout.horizon_us if layout.expires and newest is not None else None
    return StoredState(
        encode_state(state, layout), newest if newest is not None else state.cut, needed
    )


def _decoded(view: FeatureView, layout: StateLayout, blob: bytes | None) -> KeyState | None:
    if blob is None:
        return None
    try:
        return decode_state(blob, layout)
    except (ValueError, IndexError) as exc:
        raise OnlineStoreError(
            f"a stored state of {view.label} cannot be read ({exc}); re-materialize the view"
        ) from None


def push_events(
    store: OnlineStore,
    namespace: Namespace,
    events: Mapping[bytes, Sequence[Event]],
) -> int:
    """Merge ``events`` into their keys' states at once (skipping those a stream already
    applied); returns how many keys were written."""
    view = namespace.view
    layout = state_layout(view)

    def update(key: bytes, blob: bytes | None) -> StoredState:
        state = _decoded(view, layout, blob) or KeyState()
        add_events(state, layout, not_yet_applied(state, events[key]))
        return _stored(state, layout)

    return stores_states(store, view).update_states(namespace, list(events), update)


def not_yet_applied(state: KeyState, events: Sequence[Event]) -> Sequence[Event]:
    """``events`` without those at or before the stream position ``state`` last applied (a
    stream consumer's replay); moves the state's mark to the newest position among them."""
    positions = [e.position for e in events if e.position is not None]
    if not positions:
        return events
    applied = state.applied
    newest = max(positions)
    if applied is None:
        state.applied = newest
        return events
    state.applied = max(applied, newest)
    return [e for e in events if e.position is None or e.position > applied]


def materialize_events(
    store: OnlineStore,
    namespace: Namespace,
    events: Mapping[bytes, Iterable[Event]],
    *,
    through_us: int,
    read_from_us: int | None,
    durable: tuple[int, int] | None,
    built: StateBuilt | None = None,
) -> int:
    """Rebuild the keys' states from their offline ``events`` (every event of each key with
    ``read_from_us < ts <= through_us``); events stored after ``through_us`` stay, and so do
    streamed events after ``durable``, the newest stream position of the view's stream that
    the read's files hold (see :func:`~featurestore.online.aggregation_state.rebuild`).
    ``built`` is told each state."""
    view = namespace.view
    layout = state_layout(view)
    materialized = {key: list(batch) for key, batch in events.items()}

    def update(key: bytes, blob: bytes | None) -> StoredState:
        old = _decoded(view, layout, blob)
        state = rebuild(
            old,
            layout,
            materialized[key],
            through_us=through_us,
            read_from_us=read_from_us,
            durable=durable,
        )
        stored = _stored(state, layout)
        if built is not None:
            built(key, state)
        return stored

    return stores_states(store, view).update_states(namespace, list(materialized), update)


def read_from(view: FeatureView, through_us: int) -> int | None:
    """Where a materialization to ``through_us`` starts reading events: the horizon back (the
    raw events a state holds), or from the beginning when the view has a lifetime window."""
    layout = state_layout(view)
    return None if layout.lifetime else through_us - layout.horizon_us


def materialize_stream(
    store: OnlineStore,
    namespace: Namespace,
    batches: Iterable[pa.RecordBatch],
    *,
    through_us: int,
    read_from_us: int | None,
    durable: tuple[int, int] | None,
    built: StateBuilt | None = None,
) -> Iterable[tuple[int, int]]:
    """Rebuild the states of the keys in ``batches`` (events ordered by key, as the offline
    engine's ``read_events`` streams them); yields ``(rows, keys written)`` per batch. A key's
    events may span batches: the last key of a batch is held back until its events are all
    read, so each key is rebuilt once from all of them (bounded memory: one batch plus one
    key's events). ``durable``: as :func:`materialize_events`. ``built`` is told each state
    before its batch's pair is yielded."""
    view = namespace.view

    def rebuilt(events: Mapping[bytes, Iterable[Event]]) -> int:
        return materialize_events(
            store,
            namespace,
            events,
            through_us=through_us,
            read_from_us=read_from_us,
            durable=durable,
            built=built,
        )

    held: dict[bytes, list[Event]] = {}
    for batch in batches:
        grouped = events_by_key(view, batch)
        # The held key comes first: when the batch begins with another key, the held one is
        # complete, and must not be taken for the batch's last key and held again.
        grouped = {k: events + grouped.pop(k, []) for k, events in held.items()} | grouped
        if not grouped:
            yield batch.num_rows, 0
            continue
        last = next(reversed(grouped))
        held = {last: grouped.pop(last)}
        written = rebuilt(grouped)
        yield batch.num_rows, written
    if held:
        written = rebuilt(held)
        yield 0, written
