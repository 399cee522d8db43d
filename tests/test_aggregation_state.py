"""The online aggregation state against the brute-force oracle, without any store: built as
materialization builds it, updated as pushes do (late events, replays), stored and read back,
evaluated at random instants."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from online_state_oracle import HOUR, SECOND, close, oracle, random_events

from featurestore.online.aggregate_partials import AggregateSpec
from featurestore.online.aggregation_state import (
    Event,
    KeyState,
    StateLayout,
    add_events,
    answers_exactly,
    decode_state,
    encode_state,
    evaluate,
    rebuild,
)
from featurestore.online.aggregation_views import not_yet_applied

COLUMNS = ("fare", "rider", "n")


def _specs() -> tuple[AggregateSpec, ...]:
    windows = [30 * SECOND, HOUR, 6 * HOUR, None]
    plan = [
        ("fare", "count"), ("fare", "sum"), ("n", "sum"), ("fare", "mean"), ("n", "mean"),
        ("fare", "min"), ("rider", "max"), ("fare", "var"), ("n", "stddev"),
        ("rider", "first"), ("fare", "last"), ("rider", "count_distinct"),
        ("n", "approx_count_distinct"), ("fare", "approx_percentile"), ("rider", "last_k"),
    ]  # fmt: skip
    specs = []
    for i, (column, function) in enumerate(plan):
        for window in windows:
            specs.append(
                AggregateSpec(
                    name=f"{column}_{function}_{window}_{i}",
                    column=column,
                    function=function,
                    window_us=window,
                    percentile=0.9 if function == "approx_percentile" else None,
                    k=3 if function == "last_k" else None,
                    integer_sum=column == "n",
                )
            )
    return tuple(specs)


LAYOUT = StateLayout(COLUMNS, _specs(), event_id="trip_id")
PLAIN = StateLayout(COLUMNS, _specs())


def _check(state: KeyState | None, layout: StateLayout, events: list[Event], at: int) -> None:
    assert answers_exactly(state, layout, at)
    got = evaluate(state, layout, at)
    for spec, value in zip(layout.specs, got, strict=True):
        expected = oracle(spec, events, COLUMNS.index(spec.column), at)
        assert close(value, expected), (spec, at, value, expected)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("layout", [LAYOUT, PLAIN], ids=["event_id", "no_event_id"])
def test_state_matches_oracle_after_materialize_and_pushes(seed: int, layout: StateLayout) -> None:
    rng = random.Random(seed)
    base = 1_700_000_000 * SECOND
    end = base + 30 * HOUR
    offline = random_events(rng, n=rng.randrange(0, 80), start_us=base, span_us=30 * HOUR)
    # Materialization reads every event up to ``end`` (the layout has lifetime windows).
    state = rebuild(None, layout, [e for e in offline if e.ts <= end], through_us=end,
                    read_from_us=None, durable=None)  # fmt: skip
    state = decode_state(encode_state(state, layout), layout)
    known = [e for e in offline if e.ts <= end]
    _check(state, layout, known, end)
    pushed_id = 10_000
    for _ in range(6):
        # Pushes: new events, late events (before the newest seen, some before the cut),
        # and, with an event id, replays of events already counted.
        newest = max((e.ts for e in known), default=end)
        batch = random_events(
            rng,
            n=rng.randrange(1, 8),
            start_us=newest - rng.choice([10 * SECOND, 2 * HOUR, 40 * HOUR]),
            span_us=rng.choice([20 * SECOND, 3 * HOUR]),
            seq_from=1 << 40 | pushed_id,
            id_from=pushed_id,
        )
        pushed_id += len(batch)
        # Ids are remembered as long as their events are held raw (the dedupe horizon).
        held = [e for e in known if e.ts > state.cut]
        replays = rng.sample(held, min(len(held), 2)) if layout.event_id else []
        added = add_events(state, layout, [*batch, *replays])
        assert added == len(batch)
        known += batch
        state = decode_state(encode_state(state, layout), layout)
        newest = max(e.ts for e in known)
        for at in [newest, newest + rng.randrange(0, 8 * HOUR), newest + 50 * HOUR]:
            _check(state, layout, known, at)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("layout", [LAYOUT, PLAIN], ids=["event_id", "no_event_id"])
def test_a_stream_replay_is_skipped_by_its_position_at_any_age(
    seed: int, layout: StateLayout
) -> None:
    """Stream batches (late events included) merged as a consumer merges them, a batch now and
    then replayed with the next one (a consumer killed before acknowledging it), through the
    stored form and a materialization: every event counts once, with or without an event id,
    even when its replay comes after it was folded beyond the raw-event horizon."""
    rng = random.Random(seed)
    day = 24 * HOUR
    base = 1_700_000_000 * SECOND
    produced = random_events(rng, n=rng.randrange(20, 120), start_us=base, span_us=4 * day,
                             seq_from=1 << 40)  # fmt: skip
    stream = [
        replace(e, position=(1_700_000_000_000 + i // 3, i % 3)) for i, e in enumerate(produced)
    ]
    cuts = sorted(rng.sample(range(1, len(stream)), 5))
    batches = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    state = KeyState()
    previous: list[Event] = []
    for batch in batches:
        replayed = previous if rng.random() < 0.5 else []
        assert add_events(state, layout, not_yet_applied(state, [*replayed, *batch])) == len(batch)
        state = decode_state(encode_state(state, layout), layout)
        previous = batch
    assert state.applied == stream[-1].position
    newest = max(e.ts for e in stream)
    for at in [newest, newest + rng.randrange(0, 8 * HOUR)]:
        _check(state, layout, stream, at)
    # A materialization keeps the mark: replaying the last batch afterwards adds nothing. Every
    # batch's offline file is published (its read holds every position): nothing kept twice.
    through = newest - rng.randrange(0, HOUR)
    offline = [e for e in stream if e.ts <= through]
    state = rebuild(state, layout, offline, through_us=through, read_from_us=None,
                    durable=stream[-1].position)  # fmt: skip
    assert state.applied == stream[-1].position
    assert add_events(state, layout, not_yet_applied(state, batches[-1])) == 0
    _check(state, layout, stream, newest)


def test_without_event_id_a_replay_counts_twice() -> None:
    spec = AggregateSpec("c", "fare", "count", HOUR)
    layout = StateLayout(("fare",), (spec,))
    state = KeyState()
    event = Event(10 * SECOND, 0, 1, (1.0,), None)
    add_events(state, layout, [event])
    add_events(state, layout, [event])
    assert evaluate(state, layout, 20 * SECOND) == [2]


def test_window_bounds_are_open_below_closed_above() -> None:
    spec = AggregateSpec("c", "fare", "count", HOUR)
    layout = StateLayout(("fare",), (spec,))
    state = KeyState()
    add_events(state, layout, [Event(0, 0, 0, (1.0,)), Event(HOUR, 0, 1, (1.0,))])
    assert evaluate(state, layout, HOUR - 1) == [1]
    assert evaluate(state, layout, HOUR) == [1]  # the event at t - window is out
    assert evaluate(state, layout, 2 * HOUR - 1) == [1]
    assert evaluate(state, layout, 2 * HOUR) == [0]
    assert evaluate(None, layout, HOUR) == [0]


def test_stored_state_rejects_other_bytes() -> None:
    with pytest.raises(ValueError, match="not an aggregation state"):
        decode_state(b"\x01" + bytes(40), LAYOUT)


def test_lifetime_approx_count_distinct_folds_into_a_bounded_sketch() -> None:
    spec = AggregateSpec("d", "rider", "approx_count_distinct", None)
    exact = AggregateSpec("e", "rider", "count_distinct", None)
    layout = StateLayout(("rider",), (spec, exact))
    state = KeyState()
    rng = random.Random(1)
    values = [f"rider-{rng.randrange(12_000)}" for _ in range(10_000)]
    day = 86_400 * SECOND
    # Old events (folded beyond the one-day horizon), then a few recent raw ones.
    add_events(state, layout, [Event(i, 0, i, (v,)) for i, v in enumerate(values)])
    add_events(state, layout, [Event(3 * day + i, 0, i, (f"new-{i}",)) for i in range(50)])
    approx, truth = evaluate(state, layout, 4 * day)
    assert truth == len(set(values)) + 50
    assert abs(approx - truth) <= 0.05 * truth  # APPROX_COUNT_DISTINCT_RELATIVE_ERROR
    blob = encode_state(state, layout)
    sketch = decode_state(blob, layout).folded[0]
    assert sketch[0] is None  # registers, not thousands of values
    assert len(sketch) <= 4097
    assert evaluate(decode_state(blob, layout), layout, 4 * day) == [approx, truth]


# -- stream positions per event (materialization keeps what its read lacks) ------------------

STREAMED = StateLayout(
    ("fare", "trip"),
    (AggregateSpec("c", "fare", "count", HOUR), AggregateSpec("s", "fare", "sum", None)),
    event_id="trip",
)
#: A state as the encoder before per-event positions stored it (two streamed events, applied
#: position 1700000000000-1): made by that encoder, kept as bytes.
OLD_STATE = bytes.fromhex(
    "418000000001312d000000000000000000f3eb3a09256a348dffffffebe359cd00000000028096980000000000"
    "002d3101000000000000000000000000000000000000000001000000000000000200000000000000080500000009"
    "0200000000000000000000f83f00000000000004400a020000000007000000000000000800000000000000"
    "0a02000000000700000000000000080000000000000008000000000a02000000000068e5cf8b01000001000000"
    "00000000"
)


def test_a_state_stored_before_positions_decodes_with_none() -> None:
    state = decode_state(OLD_STATE, STREAMED)
    assert state.applied == (1_700_000_000_000, 1)
    assert [(e.ts, e.values, e.position) for e in state.events()] == [
        (10 * SECOND, (1.5, 7), None),
        (20 * SECOND, (2.5, 8), None),
    ]
    assert evaluate(state, STREAMED, 30 * SECOND) == [2, 4.0]
    # Without positions nothing is known to be missing from a read: kept only after its end.
    rebuilt = rebuild(state, STREAMED, [], through_us=15 * SECOND, read_from_us=None,
                      durable=None)  # fmt: skip
    assert [e.ts for e in rebuilt.events()] == [20 * SECOND]


def test_rebuild_keeps_the_streamed_events_after_the_durable_position_once() -> None:
    """Four streamed events merged online; the read holds the first two (their file was
    listed), so the rebuild keeps the other two, with their positions, and a later read
    holding all four keeps none of the old ones: every event counts once."""
    positions = [(1_700_000_000_000 + i // 2, i % 2) for i in range(4)]
    streamed = [
        Event(i * 60 * SECOND, 0, (1 << 40) + i, (float(i + 1), i), i, positions[i])
        for i in range(4)
    ]
    state = KeyState()
    add_events(state, STREAMED, not_yet_applied(state, streamed))
    state = decode_state(encode_state(state, STREAMED), STREAMED)
    assert state.positions == positions
    through = 10 * 60 * SECOND  # after every event: only positions tell them apart
    read = [replace(e, seq=i + 1, position=None) for i, e in enumerate(streamed)]
    half = rebuild(state, STREAMED, read[:2], through_us=through, read_from_us=None,
                   durable=positions[1])  # fmt: skip
    half = decode_state(encode_state(half, STREAMED), STREAMED)
    assert [e.position for e in half.events()] == [None, None, *positions[2:]]
    assert half.applied == positions[-1]
    _check(half, STREAMED, streamed, through)
    full = rebuild(half, STREAMED, read, through_us=through, read_from_us=None,
                   durable=positions[-1])  # fmt: skip
    assert full.positions == []
    _check(full, STREAMED, streamed, through)
    again = rebuild(full, STREAMED, read, through_us=through, read_from_us=None,
                    durable=positions[-1])  # fmt: skip
    assert again.events() == full.events()
