"""Online lookups against the real online stores (SQLite embedded; Redis on 127.0.0.1:6379).

Rows are written with ``write_batch`` directly, so each status can be set up exactly; the Redis
variant uses its own database number and a project of its own per test. When Redis is unreachable
the Redis tests fail if ``CI`` is set and are skipped loudly otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import require_redis

from featurestore import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from featurestore.errors import EntityFrameError, FeatureReferenceError
from featurestore.online.base import CREATED_TS, EVENT_TS, Namespace
from featurestore.online.lookup import FieldStatus, OnlineLookup
from featurestore.types import Float32, Float64, Int64, String

REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
T = datetime(2026, 3, 1, 12, tzinfo=UTC)
US = timedelta(microseconds=1)

DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
CUSTOMER = Entity(name="customer", join_keys=["customer_id"], value_type=Int64)
TRIP = Entity(
    name="trip", join_keys=["city", "trip_no"], value_type={"city": String, "trip_no": Int64}
)


def driver_stats(ttl: timedelta | None = timedelta(hours=2)) -> FeatureView:
    return FeatureView(
        name="driver_stats",
        entities=[DRIVER],
        ttl=ttl,
        schema=[
            Field(name="conv_rate", dtype=Float32),
            Field(name="acc_rate", dtype=Float32),
            Field(name="trips", dtype=Int64),
        ],
        source=FileSource(path="data/driver_stats.parquet", created_timestamp_column="created"),
    )


CUSTOMER_PROFILE = FeatureView(
    name="customer_profile",
    entities=[CUSTOMER],
    schema=[
        Field(name="age", dtype=Int64),
        Field(name="tier", dtype=String),
        Field(name="trips", dtype=Int64),
    ],
    source=FileSource(path="data/customers.parquet"),
)
TRIP_STATS = FeatureView(
    name="trip_stats",
    entities=[TRIP],
    ttl=timedelta(days=1),
    schema=[Field(name="fare", dtype=Float64)],
    source=FileSource(path="data/trips.parquet"),
)
SERVICE = FeatureService(
    name="model", features=[driver_stats()[["conv_rate"]], CUSTOMER_PROFILE[["age", "tier"]]]
)


def write_sources(root: Path) -> None:
    """Source files the definitions validate against (lookups never read them)."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "driver_id": pd.Series([1], dtype="int64"),
            "event_timestamp": [T],
            "created": [T],
            "conv_rate": pd.Series([0.5], dtype="float32"),
            "acc_rate": pd.Series([0.5], dtype="float32"),
            "trips": [1],
        }
    ).to_parquet(root / "data" / "driver_stats.parquet")
    pd.DataFrame(
        {"customer_id": [1], "event_timestamp": [T], "age": [30], "tier": ["gold"], "trips": [2]}
    ).to_parquet(root / "data" / "customers.parquet")
    pd.DataFrame({"city": ["a"], "trip_no": [1], "event_timestamp": [T], "fare": [1.5]}).to_parquet(
        root / "data" / "trips.parquet"
    )


def make_store(root: Path, backend: str) -> FeatureStore:
    """A store on ``backend`` with a unique project, so Redis tests never see each other."""
    write_sources(root)
    project = f"lookup_{uuid.uuid4().hex[:10]}"
    online = (
        "{type: sqlite, path: data/online.db, expiry_grace: 36500d}"
        if backend == "sqlite"
        else f"{{type: redis, url: '{REDIS_URL}', expiry_grace: 36500d}}"
    )
    (root / "featurestore.yaml").write_text(f"project: {project}\nonline_store: {online}\n")
    store = FeatureStore(repo_path=root)
    store.apply([DRIVER, CUSTOMER, TRIP, driver_stats(), CUSTOMER_PROFILE, TRIP_STATS, SERVICE])
    return store


ASYNC = {"on": False}


@pytest.fixture(autouse=True, params=["scalar", "vectorized", "scalar-async"])
def lookup_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every lookup test runs on both paths: the scalar one of small lookups and the
    vectorized one of large lookups must give identical answers; and the scalar path once more
    through ``lookup_async`` (the REST service's: an async Redis client on an event loop)."""
    if request.param == "vectorized":
        monkeypatch.setattr("featurestore.online.lookup.SMALL_LOOKUP", 0)
    monkeypatch.setitem(ASYNC, "on", request.param.endswith("async"))
    return str(request.param)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    if request.param == "redis":
        require_redis(REDIS_URL)
    opened = make_store(tmp_path / "repo", request.param)
    try:
        yield opened
    finally:
        opened.teardown()
        opened.close()


def write(
    store: FeatureStore, view_name: str, rows: list[dict[str, Any]], version: int = 0
) -> None:
    """Write rows (keys, ``ts``, optional ``created``, features) straight into the online store."""
    version = version or store.registry.current_version(store.project, "feature_view", view_name)
    view = store.get_feature_view(view_name, version)
    columns: dict[str, pa.Array] = {}
    for key, dtype in view.join_key_types.items():
        assert dtype is not None
        columns[key] = pa.array([r[key] for r in rows], dtype.to_arrow())
    micros = [int(r["ts"].timestamp() * 1_000_000) for r in rows]
    columns[EVENT_TS] = pa.array(micros, pa.int64())
    columns[CREATED_TS] = pa.array(
        [int(r.get("created", r["ts"]).timestamp() * 1_000_000) for r in rows], pa.int64()
    )
    for f in view.features:
        columns[f.name] = pa.array([r.get(f.name) for r in rows], f.dtype.to_arrow())
    batch = pa.RecordBatch.from_pydict(columns)
    store.online.write_batch(Namespace(store.project, view, version), batch)


def lookup_at(store: FeatureStore, as_of: datetime = T, **kwargs: Any) -> Any:
    lookup = OnlineLookup(store.project, store.registry, store.online)
    if not ASYNC["on"]:
        return lookup.lookup(as_of=as_of, **kwargs)

    async def run() -> Any:
        try:
            return await lookup.lookup_async(as_of=as_of, **kwargs)
        finally:
            await store.online.aclose()

    return asyncio.run(run())


def f32(value: float) -> float:
    """``value`` as Float32 stores it."""
    return float(pa.array([value], pa.float32())[0].as_py())


def test_statuses_with_inclusive_ttl_edge_and_future_rows(store: FeatureStore) -> None:
    ttl = timedelta(hours=2)
    write(
        store,
        "driver_stats",
        [
            {
                "driver_id": 1,
                "ts": T - timedelta(hours=1),
                "conv_rate": 0.5,
                "acc_rate": 0.1,
                "trips": 3,
            },
            {
                "driver_id": 2,
                "ts": T - timedelta(hours=1),
                "conv_rate": None,
                "acc_rate": 0.2,
                "trips": 4,
            },
            {"driver_id": 3, "ts": T - ttl, "conv_rate": 0.3, "acc_rate": 0.3, "trips": 5},
            {"driver_id": 4, "ts": T - ttl - US, "conv_rate": 0.4, "acc_rate": 0.4, "trips": 6},
            {"driver_id": 6, "ts": T + US, "conv_rate": 0.6, "acc_rate": 0.6, "trips": 7},
        ],
    )
    response = lookup_at(
        store,
        references=["driver_stats:conv_rate", "driver_stats:trips"],
        entities={"driver_id": [1, 2, 3, 4, 5, 6]},
    )
    s = FieldStatus
    assert response.statuses["conv_rate"] == [
        s.PRESENT,
        s.NULL_VALUE,
        s.PRESENT,
        s.OUTSIDE_MAX_AGE,
        s.NOT_FOUND,
        s.NOT_FOUND,
    ]
    assert response.statuses["trips"] == [
        s.PRESENT,
        s.PRESENT,
        s.PRESENT,
        s.OUTSIDE_MAX_AGE,
        s.NOT_FOUND,
        s.NOT_FOUND,
    ]
    assert response.to_dict() == {
        "driver_id": [1, 2, 3, 4, 5, 6],
        "conv_rate": [f32(0.5), None, f32(0.3), None, None, None],
        "trips": [3, 4, 5, None, None, None],
    }
    stamps = response.event_timestamps["conv_rate"]
    # A too-old value keeps the event time that made it too old; a future row is not there yet.
    assert stamps == [
        T - timedelta(hours=1),
        T - timedelta(hours=1),
        T - ttl,
        T - ttl - US,
        None,
        None,
    ]
    assert response.statuses["driver_id"] == [s.PRESENT] * 6
    # Seen from a later instant, driver 6's row is valid.
    later = lookup_at(
        store,
        T + timedelta(minutes=1),
        references=["driver_stats:trips"],
        entities={"driver_id": [6]},
    )
    assert later.to_dict()["trips"] == [7]


def test_view_without_ttl_never_expires(store: FeatureStore) -> None:
    write(
        store,
        "customer_profile",
        [{"customer_id": 9, "ts": T - timedelta(days=900), "age": 41, "tier": "gold", "trips": 1}],
    )
    response = lookup_at(
        store, references=["customer_profile:age"], entity_rows=[{"customer_id": 9}]
    )
    assert response.to_dict() == {"customer_id": [9], "age": [41]}
    assert response.statuses["age"] == [FieldStatus.PRESENT]


def test_two_key_entity_compares_typed_tuples(store: FeatureStore) -> None:
    write(
        store,
        "trip_stats",
        [
            {"city": "a1", "trip_no": 1, "ts": T, "fare": 1.0},
            {"city": "a", "trip_no": 11, "ts": T, "fare": 2.0},
            {"city": "a", "trip_no": 1, "ts": T, "fare": 3.0},
        ],
    )
    response = lookup_at(
        store,
        references=["trip_stats:fare"],
        entity_rows=[
            {"city": "a", "trip_no": 11},
            {"city": "a1", "trip_no": 1},
            {"city": "a", "trip_no": 1},
            {"city": "a11", "trip_no": 1},
            {"city": "a", "trip_no": 111},
        ],
    )
    assert response.to_dict()["fare"] == [2.0, 1.0, 3.0, None, None]


def test_entity_rows_and_entities_agree_and_duplicates_stay(store: FeatureStore) -> None:
    write(
        store,
        "driver_stats",
        [{"driver_id": 1, "ts": T, "conv_rate": 0.5, "acc_rate": 0.25, "trips": 3}],
    )
    write(
        store,
        "customer_profile",
        [{"customer_id": 7, "ts": T, "age": 30, "tier": "gold", "trips": 9}],
    )
    refs = ["customer_profile:tier", "driver_stats:conv_rate", "driver_stats:acc_rate"]
    rows = [
        {"driver_id": 1, "customer_id": 7, "extra": "ignored"},
        {"driver_id": 2, "customer_id": 7},
        {"driver_id": 1, "customer_id": 7, "extra": "ignored"},
    ]
    by_rows = lookup_at(store, references=refs, entity_rows=rows)
    by_columns = lookup_at(
        store, references=refs, entities={"driver_id": [1, 2, 1], "customer_id": [7, 7, 7]}
    )
    expected = {
        # Join keys first (in the order the views are first requested), then features in request order.
        "customer_id": [7, 7, 7],
        "driver_id": [1, 2, 1],
        "tier": ["gold", "gold", "gold"],
        "conv_rate": [0.5, None, 0.5],
        "acc_rate": [0.25, None, 0.25],
    }
    assert by_rows.to_dict() == expected
    assert by_columns.to_dict() == expected
    assert list(by_rows.to_dict()) == list(expected)
    assert by_rows.statuses == by_columns.statuses
    assert by_rows.event_timestamps == by_columns.event_timestamps


def test_null_key_is_not_found(store: FeatureStore) -> None:
    write(
        store,
        "driver_stats",
        [{"driver_id": 1, "ts": T, "conv_rate": 0.5, "acc_rate": 0.5, "trips": 3}],
    )
    response = lookup_at(
        store, references=["driver_stats:trips"], entities={"driver_id": [None, 1]}
    )
    assert response.to_dict() == {"driver_id": [None, 1], "trips": [None, 3]}
    assert response.statuses["trips"] == [FieldStatus.NOT_FOUND, FieldStatus.PRESENT]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"entity_rows": [{"driver_id": 1}]}, "join key 'customer_id'.*'customer_profile'"),
        ({"entities": {"driver_id": [1]}}, "join key 'customer_id'.*'customer_profile'"),
        (
            {"entity_rows": [{"driver_id": "1", "customer_id": 2}]},
            "'driver_id'.*Int64.*'1' \\(str\\)",
        ),
        (
            {"entity_rows": [{"driver_id": 1.0, "customer_id": 2}]},
            "'driver_id'.*Int64.*1.0 \\(float\\)",
        ),
        ({"entity_rows": [{"driver_id": True, "customer_id": 2}]}, "'driver_id'.*Int64.*True"),
        ({"entities": {"driver_id": [1, 2], "customer_id": [1]}}, "differ in length"),
        ({}, "exactly one of"),
        ({"entity_rows": [{"driver_id": 1}], "entities": {"driver_id": [1]}}, "exactly one of"),
        ({"entity_rows": {"driver_id": 1}}, "list of mappings"),
    ],
)
def test_bad_entities_are_clear_errors(
    store: FeatureStore, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(EntityFrameError, match=message):
        store.get_online_features(["driver_stats:conv_rate", "customer_profile:age"], **kwargs)


def test_unknown_references_are_clear_errors(store: FeatureStore) -> None:
    with pytest.raises(FeatureReferenceError, match="no feature 'nope'"):
        store.get_online_features(["driver_stats:nope"], entity_rows=[{"driver_id": 1}])
    with pytest.raises(FeatureReferenceError, match="missing_view"):
        store.get_online_features(["missing_view:x"], entity_rows=[{"driver_id": 1}])
    with pytest.raises(FeatureReferenceError, match="full_feature_names=True"):
        store.get_online_features(
            ["driver_stats:trips", "customer_profile:trips"],
            entity_rows=[{"driver_id": 1, "customer_id": 1}],
        )


def test_feature_service_and_full_feature_names(store: FeatureStore) -> None:
    now = datetime.now(UTC)
    write(
        store,
        "driver_stats",
        [{"driver_id": 1, "ts": now, "conv_rate": 0.5, "acc_rate": 0.5, "trips": 3}],
    )
    write(
        store,
        "customer_profile",
        [{"customer_id": 2, "ts": now, "age": 30, "tier": "gold", "trips": 9}],
    )
    rows = [{"driver_id": 1, "customer_id": 2}]
    by_name = store.get_online_features("model", entity_rows=rows)
    by_object = store.get_online_features(SERVICE, entity_rows=rows)
    assert (
        by_name.to_dict()
        == by_object.to_dict()
        == {
            "driver_id": [1],
            "customer_id": [2],
            "conv_rate": [0.5],
            "age": [30],
            "tier": ["gold"],
        }
    )
    full = store.get_online_features(
        ["driver_stats:trips", "customer_profile:trips"], entity_rows=rows, full_feature_names=True
    )
    assert full.to_dict() == {
        "driver_id": [1],
        "customer_id": [2],
        "driver_stats__trips": [3],
        "customer_profile__trips": [9],
    }


def test_to_pandas_and_feast_json_shape(store: FeatureStore) -> None:
    write(
        store,
        "driver_stats",
        [
            {
                "driver_id": 1,
                "ts": T - timedelta(minutes=5),
                "conv_rate": 0.5,
                "acc_rate": None,
                "trips": 3,
            }
        ],
    )
    response = lookup_at(
        store,
        references=["driver_stats:trips", "driver_stats:acc_rate"],
        entity_rows=[{"driver_id": 1}, {"driver_id": 2}],
    )
    frame = response.to_pandas()
    assert list(frame.columns) == ["driver_id", "trips", "acc_rate"]
    assert str(frame["trips"].dtype) == "Int64"
    assert frame["trips"].tolist()[0] == 3
    assert frame["trips"].isna().tolist() == [False, True]
    assert frame["acc_rate"].isna().all()
    assert response.metadata == {"feature_names": ["driver_id", "trips", "acc_rate"]}
    body = response.to_feast_json()
    assert json.loads(json.dumps(body)) == {
        "metadata": {"feature_names": ["driver_id", "trips", "acc_rate"]},
        "results": [
            {
                "values": [1, 2],
                "statuses": ["PRESENT", "PRESENT"],
                "event_timestamps": ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"],
            },
            {
                "values": [3, None],
                "statuses": ["PRESENT", "NOT_FOUND"],
                "event_timestamps": ["2026-03-01T11:55:00Z", "1970-01-01T00:00:00Z"],
            },
            {
                "values": [None, None],
                "statuses": ["NULL_VALUE", "NOT_FOUND"],
                "event_timestamps": ["2026-03-01T11:55:00Z", "1970-01-01T00:00:00Z"],
            },
        ],
    }


def counting(target: Any, name: str, counts: dict[str, int]) -> Callable[..., Any]:
    original = getattr(target, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        counts[name] = counts.get(name, 0) + 1
        return original(*args, **kwargs)

    return wrapper


def test_plans_are_cached_per_request_shape(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts: dict[str, int] = {}
    registry = store.registry
    for name in ("get", "current_version", "state_token", "list"):
        monkeypatch.setattr(registry, name, counting(registry, name, counts))
    lookup = OnlineLookup(store.project, registry, store.online, freshness_interval=3600)
    refs = ["driver_stats:conv_rate", "customer_profile:age"]
    rows = [{"driver_id": 1, "customer_id": 2}]
    lookup.lookup(refs, entity_rows=rows)
    first = dict(counts)
    assert first["state_token"] == 1
    assert first["get"] == 2
    for _ in range(5):
        lookup.lookup(refs, entity_rows=rows)
        lookup.lookup(refs, entities={"driver_id": [1], "customer_id": [2]})
    assert counts == first  # no registry call at all on the hot path
    lookup.lookup(refs, entity_rows=rows, full_feature_names=True)  # a new shape resolves once
    assert counts["get"] == first["get"] + 2
    # A feature service given by name is resolved once too (service + its two views).
    before = counts["get"]
    for _ in range(3):
        assert lookup.lookup("model", entity_rows=rows).feature_names == [
            "conv_rate",
            "age",
            "tier",
        ]
    assert counts["get"] == before + 3
    assert counts["state_token"] == 1


def test_async_lookups_read_no_registry_once_planned(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts: dict[str, int] = {}
    registry = store.registry
    for name in ("get", "current_version", "state_token", "list"):
        monkeypatch.setattr(registry, name, counting(registry, name, counts))
    lookup = OnlineLookup(store.project, registry, store.online, freshness_interval=3600)
    refs = ["driver_stats:conv_rate", "customer_profile:age"]
    rows = [{"driver_id": 1, "customer_id": 2}]
    write(store, "driver_stats", [{"driver_id": 1, "ts": T, "conv_rate": 0.5}])

    async def run() -> list[Any]:
        try:
            answers = [await lookup.lookup_async(refs, entity_rows=rows, as_of=T)]
            first = dict(counts)  # the first call resolved the plan (in a worker thread)
            for _ in range(5):
                answers.append(await lookup.lookup_async(refs, entity_rows=rows, as_of=T))
            assert counts == first
            return [a.to_dict() for a in answers]
        finally:
            await store.online.aclose()

    answers = asyncio.run(run())
    assert all(a == answers[0] for a in answers)
    assert answers[0]["conv_rate"] == [0.5]
    assert answers[0] == lookup.lookup(refs, entity_rows=rows, as_of=T).to_dict()


def test_apply_of_a_new_version_is_seen_after_the_freshness_interval(store: FeatureStore) -> None:
    write(
        store,
        "driver_stats",
        [{"driver_id": 1, "ts": T, "conv_rate": 0.5, "acc_rate": 0.5, "trips": 1}],
    )
    lookup = OnlineLookup(store.project, store.registry, store.online, freshness_interval=0.3)
    refs = ["driver_stats:trips"]
    assert lookup.lookup(refs, entity_rows=[{"driver_id": 1}], as_of=T).to_dict()["trips"] == [1]
    store.apply([driver_stats(ttl=timedelta(hours=3))])  # a TTL change makes version 2
    assert store.registry.current_version(store.project, "feature_view", "driver_stats") == 2
    write(
        store,
        "driver_stats",
        [{"driver_id": 1, "ts": T, "conv_rate": 0.5, "acc_rate": 0.5, "trips": 2}],
    )
    # Within the interval the cached plan still reads version 1's namespace ...
    assert lookup.lookup(refs, entity_rows=[{"driver_id": 1}], as_of=T).to_dict()["trips"] == [1]
    time.sleep(0.35)
    # ... after it, version 2's.
    assert lookup.lookup(refs, entity_rows=[{"driver_id": 1}], as_of=T).to_dict()["trips"] == [2]
    # A pinned reference keeps reading its own version.
    pinned = lookup.lookup(["driver_stats@1:trips"], entity_rows=[{"driver_id": 1}], as_of=T)
    assert pinned.to_dict()["trips"] == [1]


def test_offline_only_view_is_refused(store: FeatureStore) -> None:
    view = FeatureView(
        name="offline_only",
        entities=[DRIVER],
        online=False,
        schema=[Field(name="conv_rate", dtype=Float32)],
        source=FileSource(path="data/driver_stats.parquet"),
    )
    store.apply([view])
    with pytest.raises(FeatureReferenceError, match="not served online"):
        store.get_online_features(["offline_only:conv_rate"], entity_rows=[{"driver_id": 1}])


def test_numpy_keys_global_view_and_pinned_next_to_current(store: FeatureStore) -> None:
    glob = FeatureView(
        name="global_stats",
        schema=[Field(name="conv_rate", dtype=Float32)],
        source=FileSource(path="data/driver_stats.parquet"),
    )
    store.apply([glob])
    write(store, "global_stats", [{"ts": T, "conv_rate": 0.5}])
    write(store, "driver_stats", [{"driver_id": 1, "ts": T, "trips": 1}])
    store.apply([driver_stats(ttl=timedelta(hours=3))])
    write(store, "driver_stats", [{"driver_id": 1, "ts": T, "trips": 2}])
    response = lookup_at(
        store,
        references=["global_stats:conv_rate", "driver_stats@1:trips", "driver_stats:trips"],
        entities={"driver_id": np.array([1, 2], dtype=np.int32)},
        full_feature_names=True,
    )
    out = response.to_dict()
    assert out == {
        "driver_id": [1, 2],
        "global_stats__conv_rate": [0.5, 0.5],  # a global view answers every entity row
        "driver_stats_v1__trips": [1, None],
        "driver_stats__trips": [2, None],
    }
    assert all(type(v) is int for v in out["driver_id"])
    json.dumps(response.to_feast_json())
