"""Aggregated views online, end to end through the facade, on SQLite, Redis and Redis Cluster:
random events (ties, nulls, late events, several keys, windows of seconds to lifetime, every
function) are materialized, then pushed at random (late events, replays of the same event id),
then looked up at random instants and compared with the brute-force oracle
(:mod:`tests.aggregation_oracle`). Also: a push is visible in the next lookup, erasure removes
the state, a denied principal gets nothing, and a view without an event id counts a replay
twice (at-least-once).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import require_redis, start_redis_cluster
from online_state_oracle import SECOND, close, oracle
from redis_cluster import RedisClusterProcesses

from featurestore import Aggregation, Entity, FeatureStore, FeatureView, Field, FileSource
from featurestore.definitions.sources import PushSource
from featurestore.online.aggregation_state import Event
from featurestore.online.aggregation_views import NULL_CREATED, state_layout
from featurestore.online.response import FieldStatus
from featurestore.types import Float64, Int64, String

REDIS_URL = "redis://127.0.0.1:6379/0"
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
WINDOWS = [timedelta(seconds=30), timedelta(hours=1), timedelta(days=1), None]
FUNCTIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("fare", "count", {}),
    ("fare", "sum", {}),
    ("n", "sum", {}),
    ("fare", "mean", {}),
    ("fare", "min", {}),
    ("rider", "max", {}),
    ("fare", "stddev", {}),
    ("n", "var", {}),
    ("rider", "first", {}),
    ("fare", "last", {}),
    ("rider", "count_distinct", {}),
    ("n", "approx_count_distinct", {}),
    ("fare", "approx_percentile", {"percentile": 0.9}),
    ("rider", "last_k", {"k": 3}),
]


def _view(
    event_id: str | None = "trip_id", name: str = "trip_stats", retention: timedelta | None = None
) -> FeatureView:
    source = PushSource(
        name=f"{name}_push",
        batch_source=FileSource(
            path="data/trips.parquet",
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
        ),
    )
    return FeatureView(
        name=name,
        entities=[DRIVER],
        source=source,
        schema=[
            Field(name="fare", dtype=Float64),
            Field(name="rider", dtype=String),
            Field(name="n", dtype=Int64),
            *([Field(name="trip_id", dtype=Int64)] if event_id else []),
        ],
        aggregations=[
            Aggregation(column=column, function=function, window=window, **params)
            for column, function, params in FUNCTIONS
            for window in WINDOWS
        ],
        event_id=event_id,
        retention=retention,
    )


def _rows(
    rng: random.Random, n: int, start: datetime, span: timedelta, first_id: int
) -> pd.DataFrame:
    """``n`` trips of drivers 1-4 with tied times, null values and null created times."""
    stamps = [start + span * rng.random() for _ in range(max(1, n // 3))]
    stamps = [s.replace(microsecond=s.microsecond - s.microsecond % 1000) for s in stamps]
    rows = []
    for i in range(n):
        ts = rng.choice(stamps)
        created = None if rng.random() < 0.1 else ts + timedelta(seconds=rng.choice([0, 0, 5]))
        rows.append(
            {
                "driver_id": rng.randrange(1, 5),
                "event_timestamp": ts,
                "created": created,
                "fare": None if rng.random() < 0.15 else round(rng.uniform(0, 50), 3),
                "rider": None if rng.random() < 0.1 else rng.choice(["a", "b", "c", "1", "é"]),
                "n": None if rng.random() < 0.1 else rng.randrange(-5, 20),
                "trip_id": first_id + i,
            }
        )
    frame = pd.DataFrame(rows)
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame["created"] = pd.to_datetime(frame["created"], utc=True)
    frame["n"] = frame["n"].astype("Int64")
    return frame


def _us(moment: Any) -> int:
    return int(pd.Timestamp(moment).value // 1000)


def _events(frame: pd.DataFrame, seq_from: int) -> dict[int, list[Event]]:
    """The oracle's view of rows: per driver, events with the state's ordering fields."""
    out: dict[int, list[Event]] = {}
    for i, row in enumerate(frame.itertuples(index=False)):
        values = tuple(
            None if pd.isna(v) else (int(v) if c in ("n", "trip_id") else v)
            for c, v in (("fare", row.fare), ("rider", row.rider), ("n", row.n),
                         ("trip_id", row.trip_id))
        )  # fmt: skip
        created = NULL_CREATED if pd.isna(row.created) else _us(row.created)
        event = Event(_us(row.event_timestamp), created, seq_from + i, values, row.trip_id)
        out.setdefault(int(row.driver_id), []).append(event)
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    processes = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield processes
    processes.stop()


def _online_yaml(kind: str, request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """The ``online_store`` section for ``kind`` and the key prefix to clean up (Redis)."""
    if kind == "sqlite":
        return "{type: sqlite, path: data/online.db}", None
    prefix = f"fstest:{uuid.uuid4().hex[:12]}:"
    if kind == "redis":
        require_redis(REDIS_URL)
        return f"{{type: redis, url: '{REDIS_URL}', key_prefix: '{prefix}'}}", prefix
    processes: RedisClusterProcesses = request.getfixturevalue("cluster")
    return (
        f"{{type: redis, url: '{processes.url}', cluster: true, key_prefix: '{prefix}'}}",
        prefix,
    )


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    online, _ = _online_yaml(request.param, request)
    project = f"aggon_{uuid.uuid4().hex[:8]}"
    (tmp_path / "featurestore.yaml").write_text(f"project: {project}\nonline_store: {online}\n")
    (tmp_path / "data").mkdir()
    return tmp_path


@pytest.fixture
def store(repo: Path) -> Iterator[FeatureStore]:
    """The repository's store; its online rows are removed afterwards."""
    with FeatureStore(repo_path=repo) as opened:
        yield opened
        opened.online.delete_project(opened.project)


def test_online_windows_match_the_oracle_after_materialize_and_pushes(
    repo: Path, store: FeatureStore
) -> None:
    rng = random.Random(14)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(days=3)
    offline = _rows(rng, 150, start, timedelta(days=2), first_id=0)
    offline.to_parquet(repo / "data" / "trips.parquet")
    view = _view()
    store.apply([DRIVER, view])
    end = start + timedelta(days=2)
    store.materialize(start, end)
    # File order is the offline tie-break; the run reads every event up to ``end``.
    known = _events(offline[offline["event_timestamp"] <= end], seq_from=1)
    seq = 1 << 62
    pushed: list[pd.DataFrame] = []
    for round_ in range(5):
        newest = max(e.ts for events in known.values() for e in events)
        back = rng.choice([timedelta(seconds=20), timedelta(hours=3), timedelta(days=2)])
        batch = _rows(rng, rng.randrange(1, 12), _dt(newest) - back, back + timedelta(hours=1),
                      first_id=1000 * (round_ + 1))  # fmt: skip
        recent = [b for b in pushed if _us(b["event_timestamp"].min()) > newest - 3600 * SECOND]
        replay = pd.concat(recent[-1:]) if recent else batch.iloc[:0]
        # Offline too, so the offline retrieval at the same instants sees the same events.
        store.push(
            "trip_stats_push",
            pd.concat([batch, replay], ignore_index=True),
            to="online_and_offline",
        )
        pushed.append(batch)
        for key, events in _events(batch, seq_from=seq).items():
            known.setdefault(key, []).extend(events)
        seq += len(batch)
        _check_lookups(store, view, known, rng)
    newest = max(e.ts for events in known.values() for e in events)
    for at in (_dt(newest), _dt(newest) + timedelta(minutes=30)):
        _check_offline_agrees(store, view, at)


def _check_offline_agrees(store: FeatureStore, view: FeatureView, at: datetime) -> None:
    """Online == offline at one instant, for every exact function (the approx ones are held
    to the oracle's bound on each side)."""
    drivers = [1, 2, 3, 4, 99]
    exact = [agg.name for agg in view.aggregations if agg.spec_of_function.exact]
    online = store.get_online_features(
        [f"{view.name}:{name}" for name in exact],
        entity_rows=[{"driver_id": d} for d in drivers],
        as_of=at,
    ).to_dict()
    entity_df = pd.DataFrame({"driver_id": drivers, "event_timestamp": [at] * len(drivers)})
    offline = (
        store.get_historical_features(entity_df, [f"{view.name}:{name}" for name in exact])
        .to_arrow()
        .to_pydict()
    )
    for name in exact:
        for d, got, want in zip(drivers, online[name], offline[name], strict=True):
            assert close(got, want), (name, d, got, want)


def _dt(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)


def _check_lookups(
    store: FeatureStore, view: FeatureView, known: dict[int, list[Event]], rng: random.Random
) -> None:
    layout = state_layout(view)
    newest = max(e.ts for events in known.values() for e in events)
    features = [f"{view.name}:{name}" for name in view.feature_names]
    drivers = [1, 2, 3, 4, 99]
    for at in [newest, newest + rng.randrange(0, 3600 * SECOND), newest + 2 * 86400 * SECOND]:
        response = store.get_online_features(
            features, entity_rows=[{"driver_id": d} for d in drivers], as_of=_dt(at)
        ).to_dict()
        for spec in layout.specs:
            column = layout.column_index(spec.column)
            for d, got in zip(drivers, response[spec.name], strict=True):
                expected = oracle(spec, known.get(d, []), column, at)
                assert close(got, expected), (spec.name, d, at, got, expected)


def test_a_push_is_visible_in_the_next_lookup_and_erasure_removes_the_state(
    repo: Path, store: FeatureStore
) -> None:
    now = datetime.now(timezone.utc)
    rng = random.Random(3)
    offline = _rows(rng, 20, now - timedelta(hours=5), timedelta(hours=4), first_id=0)
    offline.to_parquet(repo / "data" / "trips.parquet")
    view = _view()
    store.apply([DRIVER, view])
    store.materialize(now - timedelta(days=1), now)
    ref = [f"{view.name}:fare_count_1h", f"{view.name}:fare_count_lifetime"]

    def counts() -> list[int]:
        out = store.get_online_features(ref, entity_rows=[{"driver_id": 7}]).to_dict()
        return [out["fare_count_1h"][0], out["fare_count_lifetime"][0]]

    assert counts() == [0, 0]
    event = {
        "driver_id": [7], "event_timestamp": [datetime.now(timezone.utc)],
        "created": [datetime.now(timezone.utc)], "fare": [1.5], "rider": ["x"], "n": [1],
        "trip_id": [123456],
    }  # fmt: skip
    store.push("trip_stats_push", event)
    assert counts() == [1, 1]
    store.push("trip_stats_push", event)  # a replay of the same trip_id
    assert counts() == [1, 1]
    store.erase({"driver_id": 7})
    assert counts() == [0, 0]


def test_without_an_event_id_pushes_are_at_least_once(repo: Path, store: FeatureStore) -> None:
    now = datetime.now(timezone.utc)
    offline = _rows(random.Random(5), 5, now - timedelta(hours=2), timedelta(hours=1), 0)
    offline.to_parquet(repo / "data" / "trips.parquet")
    view = _view(event_id=None, name="trip_stats_dup")
    store.apply([DRIVER, view])
    event = {
        "driver_id": [8], "event_timestamp": [now], "created": [now], "fare": [2.0],
        "rider": ["y"], "n": [2], "trip_id": [1],
    }  # fmt: skip
    store.push("trip_stats_dup_push", event)
    store.push("trip_stats_dup_push", event)
    out = store.get_online_features(
        [f"{view.name}:fare_sum_1h"], entity_rows=[{"driver_id": 8}]
    ).to_dict()
    assert out["fare_sum_1h"] == [4.0]


def test_a_lookup_before_what_the_state_keeps_says_so_instead_of_a_wrong_value(
    repo: Path, store: FeatureStore
) -> None:
    """The state keeps raw events for its horizon back from the key's newest event; an
    ``as_of`` lookup whose window reaches before that cannot be exact online: null and
    OUTSIDE_MAX_AGE, while a lookup now (and offline retrieval at the old instant) are exact."""
    now = datetime.now(timezone.utc)
    _rows(random.Random(9), 3, now - timedelta(hours=2), timedelta(hours=1), 0).to_parquet(
        repo / "data" / "trips.parquet"
    )
    view = _view(name="trip_stats_old")
    store.apply([DRIVER, view])
    old = now - timedelta(days=30)
    for i, moment in enumerate([old, now]):
        event = {
            "driver_id": [9], "event_timestamp": [moment], "created": [moment], "fare": [2.0],
            "rider": ["z"], "n": [1], "trip_id": [9000 + i],
        }  # fmt: skip
        store.push("trip_stats_old_push", event)
    ref = [f"{view.name}:fare_count_1h", f"{view.name}:fare_count_lifetime"]
    then = store.get_online_features(
        ref, entity_rows=[{"driver_id": 9}], as_of=old + timedelta(minutes=30)
    )
    assert then.to_dict()["fare_count_1h"] == [None]
    assert then.statuses["fare_count_1h"] == [FieldStatus.OUTSIDE_MAX_AGE]
    assert then.statuses["fare_count_lifetime"] == [FieldStatus.OUTSIDE_MAX_AGE]
    current = store.get_online_features(ref, entity_rows=[{"driver_id": 9}]).to_dict()
    assert current["fare_count_1h"] == [1]
    assert current["fare_count_lifetime"] == [2]
