"""The consistency proof on random data, for the SQLite and the Redis online stores.

Seeded random sources with several keys (colliding two-key pairs among them), TTL expiry, null
values, corrections (same event time, later created) and late data (event time before the last
run, created after it) are materialized, then checked: online lookups at the run's end must equal
the historical retrieval at that instant. Corrupting one online value must then be reported.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from conftest import require_redis

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource
from featurestore.errors import FeatureReferenceError
from featurestore.online.base import CREATED_TS, EVENT_TS, Namespace
from featurestore.types import Float32, Float64, Int64, String

REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
T0 = datetime(2026, 2, 1, tzinfo=UTC)
E1 = T0 + timedelta(days=2)
E2 = T0 + timedelta(days=3)

DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
TRIP = Entity(
    name="trip", join_keys=["city", "trip_no"], value_type={"city": String, "trip_no": Int64}
)
DRIVER_STATS = FeatureView(
    name="driver_stats",
    entities=[DRIVER],
    ttl=timedelta(hours=6),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float64),
        Field(name="trips", dtype=Int64),
    ],
    source=FileSource(path="data/drivers", created_timestamp_column="created"),
)
TRIP_STATS = FeatureView(
    name="trip_stats",
    entities=[TRIP],
    ttl=None,
    schema=[Field(name="fare", dtype=Float32), Field(name="label", dtype=String)],
    source=FileSource(path="data/trips", created_timestamp_column="created"),
)


def driver_rows(rng: random.Random, start: datetime, end: datetime, late: bool) -> pd.DataFrame:
    """Irregular rows for 40 drivers; some go quiet early (TTL expiry), some values are null."""
    rows = []
    for driver in range(40):
        quiet_after = end - timedelta(hours=rng.choice([0, 1, 5, 7, 30]))
        t = start + timedelta(minutes=rng.randrange(0, 240))
        while t <= quiet_after:
            created = t + timedelta(minutes=rng.randrange(0, 10))
            if late:  # arrives after the first run, whatever its event time
                created = max(created, E1) + timedelta(minutes=rng.randrange(1, 60))
            rows.append(row(rng, driver, t, created))
            if rng.random() < 0.1:  # a correction: same event time, created later
                rows.append(row(rng, driver, t, created + timedelta(minutes=5)))
            t += timedelta(minutes=rng.randrange(30, 180))
    frame = pd.DataFrame(rows)
    frame["trips"] = frame["trips"].astype("Int64")
    return frame


def row(rng: random.Random, driver: int, t: datetime, created: datetime) -> dict[str, object]:
    return {
        "driver_id": driver,
        "event_timestamp": t,
        "created": created,
        "conv_rate": None if rng.random() < 0.1 else rng.random(),
        "acc_rate": None if rng.random() < 0.1 else rng.random(),
        "trips": None if rng.random() < 0.1 else rng.randrange(100),
    }


def trip_rows(rng: random.Random, end: datetime) -> pd.DataFrame:
    # ("a1", 1) and ("a", 11) would collide if keys were concatenated strings.
    keys = [("a1", 1), ("a", 11), ("a", 1), ("b", 2), ("", 12), ("1", 2)]
    rows = []
    for city, trip_no in keys:
        for _ in range(rng.randrange(1, 4)):
            t = T0 + timedelta(minutes=rng.randrange(0, int((end - T0).total_seconds() // 60)))
            rows.append(
                {
                    "city": city,
                    "trip_no": trip_no,
                    "event_timestamp": t,
                    "created": t,
                    "fare": None if rng.random() < 0.2 else rng.random() * 50,
                    "label": rng.choice(["x", "y", None]),
                }
            )
    frame = pd.DataFrame(rows)
    frame["fare"] = frame["fare"].astype("float32")
    return frame


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    if request.param == "redis":
        require_redis(REDIS_URL)
    root = tmp_path / "repo"
    rng = random.Random(20260201)
    (root / "data" / "drivers").mkdir(parents=True)
    (root / "data" / "trips").mkdir(parents=True)
    driver_rows(rng, T0, E1, late=False).to_parquet(root / "data" / "drivers" / "part-1.parquet")
    trip_rows(rng, E1).to_parquet(root / "data" / "trips" / "part-1.parquet")
    online = (
        "{type: sqlite, path: data/online.db, expiry_grace: 36500d}"
        if request.param == "sqlite"
        else f"{{type: redis, url: '{REDIS_URL}', expiry_grace: 36500d}}"
    )
    project = f"consistency_{uuid.uuid4().hex[:10]}"
    (root / "featurestore.yaml").write_text(f"project: {project}\nonline_store: {online}\n")
    opened = FeatureStore(repo_path=root)
    opened.apply([DRIVER, TRIP, DRIVER_STATS, TRIP_STATS])
    try:
        yield opened
    finally:
        opened.teardown()
        opened.close()


def test_materialized_data_is_consistent_then_corruption_is_reported(store: FeatureStore) -> None:
    store.materialize(T0 - timedelta(days=1), E1, progress=False)
    report = store.consistency_check(as_of=E1, seed=1)
    assert report.ok, report.render()
    by_feature = {(f.view, f.feature): f for f in report.features}
    assert set(by_feature) == {
        ("driver_stats", "conv_rate"),
        ("driver_stats", "acc_rate"),
        ("driver_stats", "trips"),
        ("trip_stats", "fare"),
        ("trip_stats", "label"),
    }
    conv = by_feature[("driver_stats", "conv_rate")]
    assert conv.keys == 40
    # The data exercises both sides: real values, and nulls (expired or null) that agree.
    assert 0 < conv.both_null < conv.matches
    assert by_feature[("trip_stats", "fare")].keys == 6

    # Late data and corrections arrive; an incremental run picks them up.
    rng = random.Random(7)
    late = driver_rows(rng, E1 - timedelta(hours=12), E2, late=True)
    late.to_parquet(store.repo_path / "data" / "drivers" / "part-2.parquet")
    store.materialize_incremental(E2, progress=False)
    report = store.consistency_check(as_of=E2, seed=2)
    assert report.ok, report.render()

    # Before the run's end, online rows from the "future" are not seen: they count as null
    # online, while offline finds older values -> one-sided nulls are reported.
    early = store.consistency_check(as_of=E2 - timedelta(hours=1), seed=2)
    assert not early.ok
    assert early.mismatches == 0
    assert early.one_sided_nulls > 0

    corrupt_one_value(store, E2)
    report = store.consistency_check(as_of=E2, seed=2)
    assert not report.ok
    assert report.mismatches == 1
    bad = next(f for f in report.features if f.mismatches)
    assert (bad.view, bad.feature) == ("driver_stats", "trips")
    assert bad.examples[0][1] == -1
    rendered = report.render()
    assert "INCONSISTENT" in rendered
    assert "driver_stats:trips" in rendered


def corrupt_one_value(store: FeatureStore, as_of: datetime) -> None:
    """Overwrite one driver's stored row with a wrong ``trips`` (same event time, created later)."""
    view = store.get_feature_view("driver_stats")
    version = store.registry.current_version(store.project, "feature_view", "driver_stats")
    namespace = Namespace(store.project, view, version)
    keys = pa.table({"driver_id": pa.array(list(range(40)), pa.int64())})
    stored = store.online.read(namespace, keys, view.feature_names)
    oldest = int((as_of - view.ttl).timestamp() * 1_000_000) if view.ttl else 0
    for i in range(40):
        found = stored.column("__fs_found")[i].as_py()
        ts = stored.column(EVENT_TS)[i].as_py()
        if found and ts >= oldest and stored.column("trips")[i].as_py() is not None:
            break
    else:
        raise AssertionError("no driver with a valid stored row")
    batch = pa.RecordBatch.from_pydict(
        {
            "driver_id": pa.array([i], pa.int64()),
            EVENT_TS: pa.array([ts], pa.int64()),
            CREATED_TS: pa.array([2**62], pa.int64()),
            "conv_rate": stored.column("conv_rate").slice(i, 1).combine_chunks(),
            "acc_rate": stored.column("acc_rate").slice(i, 1).combine_chunks(),
            "trips": pa.array([-1], pa.int64()),
        }
    )
    assert store.online.write_batch(namespace, batch).written == 1


def test_sample_is_deterministic_and_bounded(store: FeatureStore) -> None:
    store.materialize(T0 - timedelta(days=1), E1, progress=False)
    first = store.consistency_check(["driver_stats"], sample=5, as_of=E1, seed=3)
    again = store.consistency_check(["driver_stats"], sample=5, as_of=E1, seed=3)
    assert [f.keys for f in first.features] == [5, 5, 5]
    assert first == again
    assert {f.view for f in first.features} == {"driver_stats"}
    assert "consistent" in first.summary()


def test_unknown_view_is_a_clear_error(store: FeatureStore) -> None:
    with pytest.raises(FeatureReferenceError, match="nope"):
        store.consistency_check(["nope"])
