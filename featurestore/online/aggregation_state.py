"""Online state of an aggregated view, per entity key: exact windows at any later instant.

A key's state holds the key's raw events of the last ``horizon`` (the view's longest bounded
window, at least :data:`MIN_HORIZON_US`) counted back from the newest event seen for the key,
plus, for lifetime aggregations, one mergeable partial aggregate per aggregation folding every
older event. A window ``(t - w, t]`` is evaluated from the raw events by binary search on the
event times, so the value is exact (not a tile approximation) at every instant
``t >= cut + w``, where ``cut = newest - horizon`` is where the raw events begin; in particular
at every ``t`` at or after the newest event seen (a lookup "now"). Lifetime windows are the
folded partial merged with the raw events up to ``t``.

Events are kept in ``(event_ts, created_ts, seq)`` order: the order ``first``, ``last`` and
``last_k`` use, as offline (event time, created time, file order). ``seq`` is the position in the
offline engine's read for materialized events, and a larger number for pushed ones (they sort
after materialized ones of the same times, in arrival order).

With ``event_id``, copies of one event count once: the copy that arrived first (least created
time, a null one first, then order number), as offline. A copy arriving after the one held is
ignored; one that sorts before it replaces it. Ids are remembered while their events are held
raw, so the dedupe horizon is the raw-event horizon; a copy of an event older than that is
counted again in lifetime aggregations (documented: at-least-once beyond the horizon). Events
from a stream carry their stream position, and the state keeps the newest position it applied
(``applied``): a stream consumer's replay is recognized at any age (see
:func:`featurestore.online.aggregation_views.push_events`). Each raw event also keeps its own
position, so materialization (:func:`rebuild`) can tell a streamed event whose offline file it
did not read (published after the engine listed the files) from one it read.

Stored form (format version :data:`STATE_VERSION`)::

    offset 0   version                    1 byte (= 0x41, so a plain row is never read as state)
    offset 1   newest event_ts            8 bytes, big-endian, sign bit flipped (as a row header:
    offset 9   zero                       8 bytes      retention compares these bytes)
    offset 17  generation                 8 bytes (random; Redis compares it to update safely)
    offset 25  cut                        8 bytes, big-endian
    offset 33  events                     4 bytes, big-endian (n)
    then       event times, created times, order numbers (n int64 each, little-endian), then
               the value columns, the event ids, the folded partials and (only in a state a
               stream wrote) the applied stream position (null when unknown), then (only when
               a raw event came from a stream) each raw event's stream position as two int64
               columns (milliseconds, sequence; null: not from a stream), as one nested value
               of :mod:`featurestore.online.state_codec`. States stored before positions were
               kept per event end at the applied position and decode with none.

Nothing here is pickled: a stored state can never run code when read.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from featurestore.online.aggregate_partials import (
    COUNTING,
    AggregateSpec,
    final_value,
    merge_partials,
    partial_of_values,
)
from featurestore.online.codec import HEADER_END
from featurestore.online.hll import sketch_union
from featurestore.online.state_codec import decode_value, encode_value

STATE_VERSION = 0x41
GENERATION_END = HEADER_END + 8
_HEAD = struct.Struct(">BQQ8sqI")
_FLIP = 1 << 63
_BIG_ENDIAN = sys.byteorder == "big"  # stored arrays are little-endian everywhere
_WRAP = 1 << 64
_I64_MIN = -(2**63)
#: Raw events are kept at least this long (one day, in µs), so replays of a view with only
#: lifetime windows are still recognized for a day.
MIN_HORIZON_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class StateLayout:
    """What a view's state holds: the aggregated columns (in order), the aggregations, and the
    event id column (None: no dedupe)."""

    columns: tuple[str, ...]
    specs: tuple[AggregateSpec, ...]
    event_id: str | None = None

    @property
    def lifetime(self) -> tuple[int, ...]:
        """Positions (in ``specs``) of the lifetime aggregations: they have a folded partial."""
        return tuple(i for i, s in enumerate(self.specs) if s.window_us is None)

    @property
    def horizon_us(self) -> int:
        windows = [s.window_us for s in self.specs if s.window_us is not None]
        return max([MIN_HORIZON_US, *windows])

    @property
    def expires(self) -> bool:
        """Whether a state may expire once its newest event is older than the horizon (not when
        a lifetime aggregation must keep its folded partial forever)."""
        return not self.lifetime

    def column_index(self, column: str) -> int:
        return self.columns.index(column)


@dataclass
class Event:
    """One event: times (epoch µs; a null created time is the oldest), order, values of the
    layout's columns, and its id (None without an event id column)."""

    ts: int
    created: int
    seq: int
    values: tuple[Any, ...]
    event_id: Any = None
    position: tuple[int, int] | None = None  # in its stream (None: not from a stream)

    @property
    def order(self) -> tuple[int, int, int]:
        return (self.ts, self.created, self.seq)


@dataclass
class KeyState:
    """One key's state (see the module docstring), column by column: event times, created
    times, order numbers, one list per layout column and the event ids, all in event order."""

    cut: int = _I64_MIN
    ts: list[int] = field(default_factory=list)
    created: list[int] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    columns: list[list[Any]] = field(default_factory=list)
    ids: list[Any] = field(default_factory=list)
    folded: list[Any] = field(default_factory=list)
    applied: tuple[int, int] | None = None  # the newest stream position merged
    #: Each raw event's stream position (None: not from a stream); empty when none has one.
    positions: list[tuple[int, int] | None] = field(default_factory=list)

    @property
    def newest(self) -> int | None:
        return self.ts[-1] if self.ts else None

    def events(self) -> list[Event]:
        n = len(self.ts)
        values = list(zip(*self.columns, strict=True)) if self.columns else [()] * n
        ids = self.ids or [None] * n
        positions = self.positions or [None] * n
        return [
            Event(t, c, q, tuple(v), i, p)
            for t, c, q, v, i, p in zip(
                self.ts, self.created, self.seq, values, ids, positions, strict=True
            )
        ]

    def set_events(self, events: Sequence[Event], layout: StateLayout) -> None:
        self.ts = [e.ts for e in events]
        self.created = [e.created for e in events]
        self.seq = [e.seq for e in events]
        self.columns = [[e.values[c] for e in events] for c in range(len(layout.columns))]
        self.ids = [e.event_id for e in events] if layout.event_id is not None else []
        positions = [e.position for e in events]
        self.positions = positions if any(p is not None for p in positions) else []


# -- partial aggregates ----------------------------------------------------------------------
# A partial is a plain value (tuples, lists, numbers, strings), so it can be stored as is.


def _ordered_partial(
    spec: AggregateSpec, state: KeyState, column: int, start: int, end: int
) -> Any:
    """The partial of ``first``/``last``/``last_k`` over events ``start:end`` of ``state``."""
    values = state.columns[column]
    present = [i for i in range(start, end) if values[i] is not None]
    if not present:
        return None
    if spec.function == "first":
        chosen = present[:1]
    elif spec.function == "last":
        chosen = present[-1:]
    else:
        assert spec.k is not None
        chosen = present[-spec.k :]
    items = [[state.ts[i], state.created[i], state.seq[i], values[i]] for i in chosen]
    return items if spec.function == "last_k" else items[0]


def _partial(spec: AggregateSpec, state: KeyState, column: int, start: int, end: int) -> Any:
    """The partial aggregate of ``spec`` over events ``start:end`` of ``state``."""
    if spec.function in _ORDERED:
        return _ordered_partial(spec, state, column, start, end)
    values = state.columns[column][start:end]
    return partial_of_values(spec, [v for v in values if v is not None])


_ORDERED = frozenset({"first", "last", "last_k"})


def add_events(state: KeyState, layout: StateLayout, events: Iterable[Event]) -> int:
    """Add ``events`` (any order, late ones included) to ``state``; returns how many changed it.
    Events at or before the state's cut only update the lifetime partials: no bounded window
    that the state answers can hold them.

    With an event id, copies of one event count once: the first *arrival*, the copy with the
    least ``(created, seq)`` (a null created time first), whatever their event times or values,
    as the offline engines pick it (created time, then file order). A copy that arrives first
    replaces the one held raw; any other copy is ignored."""
    incoming = list(events)
    replaced: set[int] = set()
    if layout.event_id is not None:
        incoming, replaced = _first_arrivals(state, incoming)
    fresh: list[Event] = []
    old: list[Event] = []
    for event in sorted(incoming, key=lambda e: e.order):
        (old if event.ts <= state.cut else fresh).append(event)
    if old:
        _fold(state, layout, old)
    if fresh or replaced:
        kept = [e for i, e in enumerate(state.events()) if i not in replaced]
        merged = kept + fresh
        merged.sort(key=lambda e: e.order)
        state.set_events(merged, layout)
        _compact(state, layout)
    return len(old) + len(fresh)


def _arrival(event: Event) -> tuple[int, int]:
    return (event.created, event.seq)


def _first_arrivals(state: KeyState, events: Sequence[Event]) -> tuple[list[Event], set[int]]:
    """The ``events`` that win against every other copy of their id (among themselves and the
    raw events held), and the positions of the held events they replace."""
    held = {event_id: i for i, event_id in enumerate(state.ids) if event_id is not None}
    winners: dict[Any, Event] = {}
    anonymous: list[Event] = []
    for event in events:
        if event.event_id is None:
            anonymous.append(event)
            continue
        best = winners.get(event.event_id)
        if best is None or _arrival(event) < _arrival(best):
            winners[event.event_id] = event
    chosen: list[Event] = []
    replaced: set[int] = set()
    for event_id, event in winners.items():
        position = held.get(event_id)
        if position is not None:
            if _arrival(event) >= (state.created[position], state.seq[position]):
                continue  # a replay (or a later copy): the held one arrived first
            replaced.add(position)
        chosen.append(event)
    return anonymous + chosen, replaced


def _compact(state: KeyState, layout: StateLayout) -> None:
    """Fold the events older than the horizon into the lifetime partials and drop them."""
    newest = state.newest
    if newest is None:
        return
    cut = newest - layout.horizon_us
    if cut <= state.cut:
        return
    drop = bisect_right(state.ts, cut)
    if drop:
        events = state.events()
        _fold(state, layout, events[:drop])
        state.set_events(events[drop:], layout)
    state.cut = cut


def _fold(state: KeyState, layout: StateLayout, events: Sequence[Event]) -> None:
    """Merge ``events`` (in order) into the lifetime partials."""
    lifetime = layout.lifetime
    if not lifetime:
        return
    if not state.folded:
        state.folded = [None] * len(lifetime)
    part = KeyState()
    part.set_events(events, layout)
    for slot, i in enumerate(lifetime):
        spec = layout.specs[i]
        partial = _partial(spec, part, layout.column_index(spec.column), 0, len(events))
        merged = merge_partials(spec, state.folded[slot], partial)
        if spec.function == "approx_count_distinct" and merged is not None:
            merged = sketch_union(merged, None)  # folded: registers, not values
        state.folded[slot] = merged


def rebuild(
    old: KeyState | None,
    layout: StateLayout,
    events: Iterable[Event],
    *,
    through_us: int,
    read_from_us: int | None,
    durable: tuple[int, int] | None,
) -> KeyState:
    """The state materialization writes: built from the offline ``events`` with
    ``read_from_us < ts <= through_us`` (``read_from_us`` None: every event up to
    ``through_us``), keeping the stored events after ``through_us`` (pushed ahead of the run)
    and the stored events from a stream whose position is after ``durable``, the newest stream
    position the read's files hold (None: none): those were merged online but their offline
    file was not yet published when the engine listed the files, so the read lacks them. The
    others are in the read and are not kept twice. Re-running over the same data gives the
    same state (idempotent)."""
    state = KeyState(cut=_I64_MIN if read_from_us is None else read_from_us)
    state.applied = None if old is None else old.applied
    state.set_events([], layout)
    add_events(state, layout, events)
    if old is not None:
        kept = [e for e in old.events() if e.ts > through_us or _not_durable(e, durable)]
        add_events(state, layout, kept)
    return state


def _not_durable(event: Event, durable: tuple[int, int] | None) -> bool:
    """Whether ``event`` came from a stream after position ``durable`` (not yet offline)."""
    return event.position is not None and (durable is None or event.position > durable)


# -- evaluation ------------------------------------------------------------------------------


def evaluate(
    state: KeyState | None, layout: StateLayout, at_us: int, kept_from_us: int = _I64_MIN
) -> list[Any]:
    """Every aggregation's value at instant ``at_us`` (``t - window < ts <= t``), over the
    events at or after ``kept_from_us`` (the retention cut-off; folded lifetime partials count
    unless every event they hold is older than it)."""
    if state is None:
        return [0 if s.function in COUNTING else None for s in layout.specs]
    stamps = state.ts
    end = bisect_right(stamps, at_us)
    kept = bisect_left(stamps, kept_from_us, 0, end) if kept_from_us > _I64_MIN else 0
    use_folded = bool(state.folded) and kept_from_us <= state.cut
    out: list[Any] = []
    slot = 0
    for spec in layout.specs:
        column = layout.column_index(spec.column)
        if spec.window_us is None:
            partial = _partial(spec, state, column, kept, end)
            if use_folded:
                partial = merge_partials(spec, state.folded[slot], partial)
            slot += 1
        else:
            start = max(kept, bisect_right(stamps, at_us - spec.window_us, 0, end))
            partial = _partial(spec, state, column, start, end)
        out.append(final_value(spec, partial))
    return out


def newest_at(state: KeyState | None, at_us: int) -> int | None:
    """The newest event time at or before ``at_us`` (the lookup's reported event time)."""
    if state is None:
        return None
    end = bisect_right(state.ts, at_us)
    return state.ts[end - 1] if end else None


def answers_exactly(state: KeyState | None, layout: StateLayout, at_us: int) -> bool:
    """Whether every window at ``at_us`` lies within the raw events (always true at or after
    the newest event seen)."""
    return all(exact_windows(state, layout, at_us))


def exact_windows(state: KeyState | None, layout: StateLayout, at_us: int) -> list[bool]:
    """Per aggregation of ``layout``, whether its window at ``at_us`` is answered exactly: at or
    after the newest event seen always; before it, only when the window ``(t - w, t]`` begins
    at or after ``cut`` (the raw events' start; a lifetime window needs ``t >= cut``, or the
    folded partial would count events after ``t``)."""
    if state is None or not state.ts or at_us >= state.ts[-1]:
        return [True] * len(layout.specs)
    return [at_us - (s.window_us or 0) >= state.cut for s in layout.specs]


# -- stored form -----------------------------------------------------------------------------


def encode_state(state: KeyState, layout: StateLayout) -> bytes:
    """The stored bytes of ``state`` (a fresh generation each time)."""
    newest = state.newest
    header_ts = (newest if newest is not None else state.cut) % _WRAP ^ _FLIP
    out = bytearray(
        _HEAD.pack(STATE_VERSION, header_ts, 0, os.urandom(8), state.cut, len(state.ts))
    )
    for times in (state.ts, state.created, state.seq):
        part = array("q", times)
        if _BIG_ENDIAN:
            part.byteswap()
        out += part.tobytes()
    body: list[Any] = list(state.columns)
    if layout.event_id is not None:
        body.append(state.ids)
    body.append(state.folded)
    if state.applied is not None or state.positions:
        body.append(None if state.applied is None else list(state.applied))
    if state.positions:
        body.append([[None if p is None else p[i] for p in state.positions] for i in (0, 1)])
    encode_value(body, out)
    return bytes(out)


def decode_state(blob: bytes, layout: StateLayout) -> KeyState:
    """The state stored as ``blob`` (raises ValueError when it is not a state)."""
    if len(blob) < _HEAD.size or blob[0] != STATE_VERSION:
        raise ValueError("not an aggregation state (re-materialize the view)")
    _, _, _, _, cut, n = _HEAD.unpack_from(blob)
    position = _HEAD.size
    times = []
    for _ in range(3):
        part = array("q")
        part.frombytes(blob[position : position + 8 * n])
        if _BIG_ENDIAN:
            part.byteswap()
        times.append(part.tolist())
        position += 8 * n
    body, _ = decode_value(blob, position)
    width = len(layout.columns)
    folded = width + (layout.event_id is not None)
    if len(body) not in (folded + 1, folded + 2, folded + 3):
        raise ValueError("an aggregation state does not fit the view (re-materialize it)")
    ids = body[width] if layout.event_id is not None else []
    stored = body[folded + 1] if len(body) > folded + 1 else None
    applied = None if stored is None else (stored[0], stored[1])
    positions: list[tuple[int, int] | None] = []
    if len(body) == folded + 3:  # older states have no positions: every event's is None
        millis, seqs = body[folded + 2]
        positions = [None if m is None else (m, s) for m, s in zip(millis, seqs, strict=True)]
    return KeyState(
        cut, times[0], times[1], times[2], body[:width], ids, body[folded], applied, positions
    )
