"""Duplicate events (one ``event_id``, other event times, values or created times): the first
copy to arrive counts (least created time, a null one first, then file or push order), the same
offline and online. Checked against a brute-force oracle on random duplicates: the online state
alone (random batch splits), then end to end through the facade, where online lookups after
materialization and random pushes must equal offline retrieval at the same instants."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import require_redis
from online_state_oracle import HOUR, SECOND, close, oracle

from featurestore import Aggregation, Entity, FeatureStore, FeatureView, Field, FileSource
from featurestore.definitions.sources import PushSource
from featurestore.online.aggregate_partials import AggregateSpec
from featurestore.online.aggregation_state import (
    Event,
    KeyState,
    StateLayout,
    add_events,
    evaluate,
    rebuild,
)
from featurestore.types import Float64, Int64, String

REDIS_URL = "redis://127.0.0.1:6379/13"
COLUMNS = ("fare", "rider", "trip_id")
FUNCTIONS = [
    ("fare", "count"), ("fare", "sum"), ("fare", "mean"), ("fare", "min"), ("rider", "max"),
    ("fare", "first"), ("rider", "last"), ("rider", "count_distinct"), ("fare", "var"),
]  # fmt: skip


def first_copies(events: Sequence[Event]) -> list[Event]:
    """The oracle's rule: per event id, the copy with the least (created, order number)."""
    kept: dict[Any, Event] = {}
    anonymous = []
    for event in events:
        if event.event_id is None:
            anonymous.append(event)
        elif event.event_id not in kept or (event.created, event.seq) < (
            kept[event.event_id].created,
            kept[event.event_id].seq,
        ):
            kept[event.event_id] = event
    return anonymous + list(kept.values())


def _layout() -> StateLayout:
    specs = tuple(
        AggregateSpec(f"{c}_{f}_{w}", c, f, w)
        for c, f in FUNCTIONS
        for w in (10 * SECOND, HOUR, 6 * HOUR, None)
    )
    return StateLayout(COLUMNS, specs, event_id="trip_id")


def _copies(rng: random.Random, n: int, start: int, ids: int, seq_from: int) -> list[Event]:
    """``n`` events over 10 hours from ``start`` whose ids repeat (copies with other times,
    values and created times; some ids null, some created times null and some tied)."""
    events = []
    for i in range(n):
        ts = start + rng.randrange(10 * HOUR)
        created = rng.choice([-(2**63) + 1, ts, ts + rng.randrange(HOUR), start + 3 * HOUR])
        trip = None if rng.random() < 0.1 else rng.randrange(ids)
        fare = None if rng.random() < 0.1 else round(rng.uniform(0, 40), 2)
        events.append(Event(ts, created, seq_from + i, (fare, rng.choice("abcd"), trip), trip))
    return events


@pytest.mark.parametrize("seed", range(15))
def test_state_keeps_the_first_copy_to_arrive_whatever_the_batches(seed: int) -> None:
    rng = random.Random(seed)
    layout = _layout()
    start = 1_700_000_000 * SECOND
    everything = _copies(rng, rng.randrange(5, 60), start, ids=rng.randrange(2, 25), seq_from=1)
    rng.shuffle(everything)
    cut = rng.randrange(len(everything) + 1)
    materialized, pushed = everything[:cut], everything[cut:]
    through = max((e.ts for e in materialized), default=start)
    state = rebuild(None, layout, [e for e in materialized if e.ts <= through],
                    through_us=through, read_from_us=None, durable=None)  # fmt: skip
    while pushed:
        size = rng.randrange(1, 6)
        add_events(state, layout, pushed[:size])
        pushed = pushed[size:]
    truth = first_copies(everything)
    newest = max(e.ts for e in everything)
    for at in [newest, newest + rng.randrange(HOUR), start + rng.randrange(10 * HOUR)]:
        got = evaluate(state, layout, at)
        for spec, value in zip(layout.specs, got, strict=True):
            want = oracle(spec, truth, COLUMNS.index(spec.column), at)
            assert close(value, want), (spec.name, at, value, want)


def test_a_copy_created_earlier_replaces_the_held_one() -> None:
    layout = StateLayout(("fare", "trip_id"), (AggregateSpec("s", "fare", "sum", HOUR),), "trip_id")
    state = KeyState()
    assert add_events(state, layout, [Event(10 * SECOND, 5 * SECOND, 1, (1.0, 7), 7)]) == 1
    # A replay created later, with another time and value: ignored.
    assert add_events(state, layout, [Event(20 * SECOND, 9 * SECOND, 2, (2.0, 7), 7)]) == 0
    assert evaluate(state, layout, 30 * SECOND) == [1.0]
    # A copy created before the held one arrived first: it takes the held one's place.
    assert add_events(state, layout, [Event(25 * SECOND, 1 * SECOND, 3, (4.0, 7), 7)]) == 1
    assert evaluate(state, layout, 30 * SECOND) == [4.0]
    assert evaluate(state, layout, 24 * SECOND) == [None]  # the first copy's time is gone too
    assert state.ids == [7]


# -- end to end: offline retrieval == online lookups ------------------------------------------

DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)


def _view() -> FeatureView:
    return FeatureView(
        name="dedupe_stats",
        entities=[DRIVER],
        source=PushSource(
            name="dedupe_push",
            batch_source=FileSource(
                path="data/trips.parquet",
                timestamp_field="event_timestamp",
                created_timestamp_column="created",
            ),
        ),
        schema=[
            Field(name="fare", dtype=Float64),
            Field(name="rider", dtype=String),
            Field(name="trip_id", dtype=Int64),
        ],
        aggregations=[
            Aggregation(column=c, function=f, window=w)
            for c, f in FUNCTIONS
            for w in (timedelta(minutes=20), timedelta(hours=3), None)
        ],
        event_id="trip_id",
    )


def _frame(
    rng: random.Random, n: int, start: datetime, ids: int, *, null_created: bool
) -> pd.DataFrame:
    """Trips of drivers 1-3 over 10 hours whose ids repeat, created within a few hours."""
    rows = []
    for _ in range(n):
        ts = start + timedelta(seconds=rng.randrange(10 * 3600))
        created = start + timedelta(
            seconds=rng.randrange(12 * 3600), microseconds=rng.randrange(10**6)
        )
        rows.append(
            {
                "driver_id": rng.randrange(1, 4),
                "event_timestamp": ts,
                "created": None if null_created and rng.random() < 0.15 else created,
                "fare": None if rng.random() < 0.1 else round(rng.uniform(0, 40), 2),
                "rider": rng.choice(["a", "b", "c"]),
                "trip_id": None if rng.random() < 0.05 else rng.randrange(ids),
            }
        )
    frame = pd.DataFrame(rows)
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame["created"] = pd.to_datetime(frame["created"], utc=True)
    frame["trip_id"] = frame["trip_id"].astype("Int64")
    return frame


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    if request.param == "sqlite":
        online = "{type: sqlite, path: data/online.db}"
    else:
        require_redis(REDIS_URL)
        prefix = f"fstest:{uuid.uuid4().hex[:12]}:"
        online = f"{{type: redis, url: '{REDIS_URL}', key_prefix: '{prefix}'}}"
    project = f"dedupe_{uuid.uuid4().hex[:8]}"
    (tmp_path / "featurestore.yaml").write_text(f"project: {project}\nonline_store: {online}\n")
    (tmp_path / "data").mkdir()
    with FeatureStore(repo_path=tmp_path) as opened:
        yield opened
        opened.online.delete_project(opened.project)


def test_online_and_offline_keep_the_same_copy(store: FeatureStore) -> None:
    rng = random.Random(21)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(hours=12)
    ids = 25
    # Copies within the file, with null created times (they arrived first) and file-order ties.
    offline = _frame(rng, 70, start, ids, null_created=True)
    offline.to_parquet(store.config.repo_path / "data" / "trips.parquet")
    view = _view()
    store.apply([DRIVER, view])
    store.materialize(start - timedelta(days=1), now)
    for _ in range(4):
        # Copies of ids already held (created earlier or later than the held copy), new ids,
        # and copies within the push, with other event times and values.
        batch = _frame(rng, rng.randrange(2, 12), start, ids + 10, null_created=False)
        store.push("dedupe_push", batch, to="online_and_offline")
        newest = max(_newest(offline), _newest(batch))
        offline = pd.concat([offline, batch], ignore_index=True)
        for at in (newest, newest + timedelta(minutes=rng.randrange(1, 300))):
            _check_same(store, view, at)


def test_which_copy_counts_offline_does_not_depend_on_the_entity_rows(
    store: FeatureStore,
) -> None:
    noon = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    hour = timedelta(hours=1)
    # Trip 1 arrived first (created 12:30) stamped 13:00; a copy created later is stamped 11:00.
    pd.DataFrame(
        {
            "driver_id": [1, 1],
            "event_timestamp": [noon + hour, noon - hour],
            "created": [noon + hour / 2, noon + 2 * hour],
            "fare": [10.0, 99.0],
            "rider": ["a", "a"],
            "trip_id": [1, 1],
        }
    ).to_parquet(store.config.repo_path / "data" / "trips.parquet")
    view = _view()
    store.apply([DRIVER, view])
    ref = [f"{view.name}:fare_sum_lifetime"]
    early = pd.DataFrame({"driver_id": [1], "event_timestamp": [noon]})
    both = pd.DataFrame({"driver_id": [1, 1], "event_timestamp": [noon, noon + 2 * hour]})
    alone = store.get_historical_features(early, ref).to_pandas()["fare_sum_lifetime"].tolist()
    paired = store.get_historical_features(both, ref).to_pandas()["fare_sum_lifetime"].tolist()
    assert pd.isna(alone[0])
    assert pd.isna(paired[0])
    assert paired[1] == 10.0


def _newest(frame: pd.DataFrame) -> datetime:
    return pd.Timestamp(frame["event_timestamp"].max()).to_pydatetime()


def _check_same(store: FeatureStore, view: FeatureView, at: datetime) -> None:
    drivers = [1, 2, 3]
    features = [f"{view.name}:{name}" for name in view.feature_names]
    online = store.get_online_features(
        features, entity_rows=[{"driver_id": d} for d in drivers], as_of=at
    ).to_dict()
    entity_df = pd.DataFrame({"driver_id": drivers, "event_timestamp": [at] * len(drivers)})
    offline = store.get_historical_features(entity_df, features).to_arrow().to_pydict()
    for name in view.feature_names:
        for d, got, want in zip(drivers, online[name], offline[name], strict=True):
            assert close(got, want), (name, d, at, got, want)
