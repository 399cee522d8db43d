"""Materializing an aggregated view validates the values it leaves online: per key written, the
view's aggregations at the run's end, as a lookup at that instant answers them. Real DuckDB,
real Great Expectations, the SQLite online store (and Redis, database 7 with a key prefix of
the test's own, for the strict case).

The oracle is the online store itself: ``get_online_features`` at the run's end. Every
recorded observation (counts, samples, a column's sum, mean and max over every key) must equal
the same statistic of the lookups' values.

Trips of twelve drivers: one trip every 90 minutes over two days (so never more than one in an
hour), then a busy last hour before ``END`` (0 to 6 trips a driver); driver 13 drove only three
days before ``END`` (no fare in the last day: its ``fare_mean_1d`` is null).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import require_redis

from featurestore import (
    Aggregation,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Policy,
    PushSource,
    Resource,
)
from featurestore.errors import ValidationFailedError
from featurestore.governance.access import Principal
from featurestore.materialize import Materializer
from featurestore.quality.expectations import load_great_expectations
from featurestore.quality.reporting import no_audit
from featurestore.quality.result import CheckOutcome, ValidationResult
from featurestore.quality.validation import Validation
from featurestore.types import Float32, Float64, Int64, String

END = datetime(2026, 6, 1, 12, tzinfo=UTC)
EARLY = END - timedelta(hours=6)
START = END - timedelta(days=4)
LIMIT = 3
DRIVERS = list(range(1, 14))
REDIS_URL = "redis://127.0.0.1:6379/7"
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
TRIPS = FileSource(
    path="data/trips.parquet", timestamp_field="event_timestamp", created_timestamp_column="created"
)
AGGREGATED = ["trips_1h", "fare_mean_1d", "fare_max", "riders_1h"]
ROOT = Principal("root", frozenset({"admin"}))
gx = load_great_expectations("the aggregated materialization validation tests")


def trips_within_limit(limit: int = LIMIT) -> Any:
    return gx.expectations.ExpectColumnValuesToBeBetween(
        column="trips_1h", min_value=0, max_value=limit
    )


def full_suite() -> list[Any]:
    """Two row-level failures, one aggregate failure, and two aggregates that pass but record
    what they observed over every key."""
    return [
        trips_within_limit(),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="fare_mean_1d"),
        gx.expectations.ExpectColumnMaxToBeBetween(column="fare_max", min_value=0, max_value=50),
        gx.expectations.ExpectColumnSumToBeBetween(column="trips_1h", min_value=0, max_value=1e6),
        gx.expectations.ExpectColumnMeanToBeBetween(
            column="fare_mean_1d", min_value=0, max_value=1e6
        ),
    ]


def trip_counts(
    mode: str, expectations: list[Any], source: FileSource | PushSource = TRIPS
) -> FeatureView:
    suite = gx.ExpectationSuite(name="trip_counts_suite", expectations=expectations)
    hour = timedelta(hours=1)
    return FeatureView(
        name="trip_counts",
        entities=[DRIVER],
        source=source,
        schema=[
            Field(name="fare", dtype=Float64),
            Field(name="trip_id", dtype=Int64),
            Field(name="rider", dtype=String),
        ],
        aggregations=[
            Aggregation(column="trip_id", function="count", window=hour, name="trips_1h"),
            Aggregation(column="fare", function="mean", window=24 * hour, name="fare_mean_1d"),
            Aggregation(column="fare", function="max", window=None, name="fare_max"),
            Aggregation(column="rider", function="last_k", window=hour, k=2, name="riders_1h"),
        ],
        event_id="trip_id",
        validation=Validation(suite, mode=mode, max_null_rate=1.0),
    )


PROFILE = FeatureView(
    name="driver_profile",
    entities=[DRIVER],
    schema=[Field(name="rating", dtype=Float32)],
    source=FileSource(path="data/profiles.parquet"),
)


def trips(seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []

    def trip(driver: int, ts: datetime, fare: float | None = None) -> None:
        rows.append({
            "driver_id": driver, "event_timestamp": ts, "created": ts + timedelta(seconds=5),
            "fare": fare if fare is not None or rng.random() < 0.1
            else round(rng.gammavariate(2.0, 7.0), 2) % 45,
            "trip_id": len(rows), "rider": rng.choice(["r1", "r2", "r3", None]),
        })  # fmt: skip

    busy = [rng.randrange(7) for _ in DRIVERS[:-1]]
    busy[0], busy[1] = 6, 1  # at least one driver over the limit, one within it
    for driver, count in zip(DRIVERS[:-1], busy, strict=True):
        ts = END - timedelta(days=2) + timedelta(minutes=7 * driver)
        while ts < END - timedelta(hours=1):
            trip(driver, ts)
            ts += timedelta(minutes=90)
        for _ in range(count):
            trip(driver, END - timedelta(seconds=rng.randrange(1, 3_500)))
    trip(2, END - timedelta(days=1, hours=3), fare=80.0)  # the lifetime max, over 50
    trip(13, END - timedelta(days=3), fare=12.0)
    trip(13, END - timedelta(days=3, minutes=5), fare=14.0)
    trip(3, END + timedelta(minutes=5), fare=44.0)  # after the run's end: never read
    frame = pd.DataFrame(rows)
    frame["trip_id"] = frame["trip_id"].astype("int64")
    return frame


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require_redis(REDIS_URL)
    return str(request.param)


@pytest.fixture
def repo(tmp_path: Path, backend: str) -> Iterator[Path]:
    (tmp_path / "data").mkdir()
    trips(7).to_parquet(tmp_path / "data" / "trips.parquet")
    pd.DataFrame({
        "driver_id": pd.array(DRIVERS, dtype="int64"),
        "event_timestamp": [END - timedelta(hours=2)] * len(DRIVERS),
        "rating": pd.array([4.5] * len(DRIVERS), dtype="float32"),
    }).to_parquet(tmp_path / "data" / "profiles.parquet")  # fmt: skip
    prefix = f"aggval_{uuid.uuid4().hex[:8]}:"
    online = (
        f"{{type: sqlite, path: {tmp_path / 'online.db'}, expiry_grace: 3650d}}"
        if backend == "sqlite"
        else f"{{type: redis, url: '{REDIS_URL}', key_prefix: '{prefix}', expiry_grace: 3650d}}"
    )
    (tmp_path / "featurestore.yaml").write_text(
        f"project: aggval_{uuid.uuid4().hex[:10]}\n"
        f"registry: sqlite:///{tmp_path / 'registry.db'}\n"
        f"online_store: {online}\n"
    )
    yield tmp_path
    with FeatureStore(tmp_path, principal=ROOT) as store:
        store.teardown()
    if backend == "redis":
        import redis  # the redis extra, as conftest imports it

        client = redis.Redis.from_url(REDIS_URL)
        left = list(client.scan_iter(match=f"{prefix}*"))
        if left:
            client.delete(*left)
        client.close()
        assert left == [], "teardown left keys of the test's prefix"


def open_store(repo: Path, view: FeatureView) -> FeatureStore:
    store = FeatureStore(repo)
    store.apply([DRIVER, view, PROFILE])
    return store


def online_at(store: FeatureStore, at: datetime) -> dict[str, list[Any]]:
    """Every aggregated feature of every driver, as a lookup at ``at`` answers it."""
    answer = store.get_online_features(
        [f"trip_counts:{name}" for name in AGGREGATED],
        entity_rows=[{"driver_id": d} for d in DRIVERS],
        as_of=at,
    )
    return answer.to_dict()


def watermark_end(store: FeatureStore, view: str) -> datetime | None:
    version = store.registry.current_version(store.project, "feature_view", view)
    mark = store.registry.get_watermark(
        store.project, view, version, online_store=store.online.identity
    )
    return None if mark is None else mark.end


def checks_of(result: ValidationResult) -> dict[tuple[str, str | None], CheckOutcome]:
    return {(c.check, c.column): c for c in result.checks}


def materializer(store: FeatureStore, batch_rows: int) -> Materializer:
    """The store's materializer, validating, with small batches (a key's events span several)."""
    return Materializer(
        project=store.project,
        registry=store.registry,
        offline=store.offline,
        online=store.online,
        progress=False,
        batch_rows=batch_rows,
        validation=store.quality.materialization(no_audit),
    )


# -- warn: validated as written --------------------------------------------------------------------


def test_a_warn_run_records_the_values_a_lookup_at_its_end_answers(repo: Path) -> None:
    with open_store(repo, trip_counts("warn", full_suite())) as store:
        report = store.materialize(START, END, ["trip_counts"], progress=False)
        [result] = store.validation_history("trip_counts", trigger="materialize")
        online = online_at(store, END)

    assert report.views[0].written == len(DRIVERS)
    assert (result.mode, result.success, result.rows) == ("warn", False, len(DRIVERS))
    assert result.window_end == END
    assert "failed" in (report.views[0].validation or "")
    checks = checks_of(result)
    # The values are online, failure or not.
    trips_1h, means, maxima = online["trips_1h"], online["fare_mean_1d"], online["fare_max"]
    assert (trips_1h[0], trips_1h[12]) == (6, 0)
    over = [v for v in trips_1h if v > LIMIT]
    between = checks[("expect_column_values_to_be_between", "trips_1h")]
    assert not between.success
    assert between.observed["unexpected_count"] == len(over) > 0
    assert sorted(between.samples) == sorted(set(over))
    not_null = checks[("expect_column_values_to_not_be_null", "fare_mean_1d")]
    assert not not_null.success
    assert not_null.observed["unexpected_count"] == means.count(None) >= 1
    fare_max = checks[("expect_column_max_to_be_between", "fare_max")]
    assert not fare_max.success
    assert fare_max.observed["observed_value"] == max(maxima) == 80.0
    total = checks[("expect_column_sum_to_be_between", "trips_1h")]
    assert total.observed["observed_value"] == sum(trips_1h)
    mean = checks[("expect_column_mean_to_be_between", "fare_mean_1d")]
    present = [v for v in means if v is not None]
    assert mean.observed["observed_value"] == pytest.approx(sum(present) / len(present))
    # Named and typed as the view declares its features (as store.validate checks them).
    schema = {c.column: c.success for c in result.checks if c.check == "schema"}
    assert schema == dict.fromkeys(AGGREGATED, True)


def test_the_run_checks_the_same_columns_and_types_as_validate(repo: Path) -> None:
    with open_store(repo, trip_counts("warn", [trips_within_limit()])) as store:
        store.materialize(START, END, ["trip_counts"], progress=False)
        on_demand = store.validate("trip_counts", END - timedelta(hours=1), END)
        [materialized] = store.validation_history("trip_counts", trigger="materialize")
    shape = {(c.check, c.column, c.success) for c in on_demand.checks if c.source == "quick"}
    assert shape == {
        (c.check, c.column, c.success) for c in materialized.checks if c.source == "quick"
    }


def test_values_of_keys_spanning_batches_are_validated_once(repo: Path) -> None:
    """Small batches: a key's events span several, and each key is still one row."""
    with open_store(repo, trip_counts("warn", full_suite())) as store:
        materializer(store, 7).materialize(START, END, ["trip_counts"])
        [result] = store.validation_history("trip_counts", trigger="materialize")
        online = online_at(store, END)
    checks = checks_of(result)
    assert result.rows == len(DRIVERS)
    # Values are validated in batches of as many keys as the run's batches hold rows (here
    # 7): an aggregate expectation holds per batch, and the first batch's value is recorded.
    total = checks[("expect_column_sum_to_be_between", "trips_1h")]
    assert total.observed["batches"] == 2
    assert total.observed["observed_value"] == sum(online["trips_1h"][:7])
    between = checks[("expect_column_values_to_be_between", "trips_1h")]
    assert between.observed["unexpected_count"] == sum(v > LIMIT for v in online["trips_1h"])


# -- strict: validated before anything is written -------------------------------------------------


def test_a_strict_run_that_passes_writes_and_moves_the_watermark(repo: Path) -> None:
    with open_store(repo, trip_counts("strict", [trips_within_limit()])) as store:
        report = store.materialize(START, EARLY, ["trip_counts"], progress=False)
        [result] = store.validation_history("trip_counts", trigger="materialize")
        online = online_at(store, EARLY)
        assert watermark_end(store, "trip_counts") == EARLY
    assert (result.mode, result.success, result.rows) == ("strict", True, len(DRIVERS))
    assert report.views[0].written == len(DRIVERS)
    assert report.views[0].validation == result.summary()
    # One trip every 90 minutes: each driver has had one in the hour before EARLY, or none.
    assert set(online["trips_1h"][:12]) <= {0, 1}
    assert online["trips_1h"][12] == 0
    assert sum(online["trips_1h"]) > 0


@pytest.mark.parametrize("backend", ["sqlite", "redis"], indirect=True)
def test_a_strict_failure_writes_nothing_of_the_view(repo: Path) -> None:
    with open_store(repo, trip_counts("strict", [trips_within_limit()])) as store:
        store.materialize(START, EARLY, ["trip_counts"], progress=False)
        before = {at: online_at(store, at) for at in (EARLY, END)}
        with pytest.raises(ValidationFailedError) as raised:
            store.materialize(START, END, ["driver_profile", "trip_counts"], progress=False)
        after = {at: online_at(store, at) for at in (EARLY, END)}
        assert watermark_end(store, "trip_counts") == EARLY
        # The run's other view went online as usual.
        assert watermark_end(store, "driver_profile") == END
        profile = store.get_online_features(
            ["driver_profile:rating"], entity_rows=[{"driver_id": 1}], as_of=END
        )
        assert profile.to_dict()["rating"] == [4.5]
        passed, failed = store.validation_history("trip_counts", trigger="materialize")
    message = str(raised.value)
    assert "trip_counts" in message
    assert "expect_column_values_to_be_between" in message
    assert "trips_1h" in message
    assert after == before
    assert (passed.success, failed.success) == (True, False)
    assert failed.rows == len(DRIVERS)
    over = checks_of(failed)[("expect_column_values_to_be_between", "trips_1h")]
    assert over.observed["unexpected_count"] >= 1
    assert 6 in over.samples
    assert raised.value.result.view == "trip_counts"


def test_a_strict_run_keeps_events_pushed_past_its_end(repo: Path) -> None:
    """A rejected run leaves a pushed event's state alone; the run that passes keeps the event
    (pushed after the run's end) and validated the values at the end, without it."""
    source = PushSource(name="trips_push", batch_source=TRIPS)
    with open_store(repo, trip_counts("strict", [trips_within_limit()], source)) as store:
        store.materialize(START, EARLY, ["trip_counts"], progress=False)
        pushed_at = END + timedelta(hours=2)
        store.push("trips_push", {
            "driver_id": [1], "event_timestamp": [pushed_at], "created": [pushed_at],
            "fare": [9.0], "trip_id": [100_000], "rider": ["r9"],
        }, to="online")  # fmt: skip
        # Driver 1's six trips of the last hour before END fail the run ...
        with pytest.raises(ValidationFailedError) as raised:
            store.materialize(START, END, ["trip_counts"], progress=False)
        rejected = online_at(store, pushed_at)
        # ... which passes once the limit allows them, and keeps the pushed trip.
        store.apply([trip_counts("strict", [trips_within_limit(6)], source)])
        store.materialize(START, END, ["trip_counts"], progress=False)
        at_end, later = online_at(store, END), online_at(store, pushed_at)
        [*_, passed] = store.validation_history("trip_counts", trigger="materialize")
    [failed] = raised.value.result.failures
    # What was rejected is what the passing run then wrote (at END, the push does not count).
    assert failed.observed["unexpected_count"] == sum(v > LIMIT for v in at_end["trips_1h"])
    assert rejected["trips_1h"][0] == 1  # only the pushed trip was online for driver 1 then
    assert passed.success
    assert at_end["trips_1h"][0] == 6  # the pushed trip, after END, is not counted at END
    assert later["trips_1h"][0] == 1  # the pushed trip stayed: two hours after END, alone


# -- who sees the samples, and erasure -------------------------------------------------------------


def test_samples_are_withheld_from_who_may_not_read_the_feature(repo: Path) -> None:
    policies = [
        Policy(name="admins", roles=["admin"], actions=["admin"]),
        Policy(name="analysts", roles=["analyst"], actions=["describe", "read_offline"]),
        Policy(name="no-trip-counts-for-mallory", effect="deny", principals=["mallory"],
               actions=["read_offline"],
               resources=[Resource(kind="feature", name="trip_counts:trips_1h")]),
    ]  # fmt: skip
    with FeatureStore(repo, principal=ROOT) as admin:
        admin.apply([DRIVER, trip_counts("warn", full_suite()), PROFILE, *policies])
        admin.materialize(START, END, ["trip_counts"], progress=False)
    with FeatureStore(repo, principal=Principal("bob", frozenset({"analyst"}))) as bob:
        [shown] = bob.validation_history("trip_counts", trigger="materialize")
    with FeatureStore(repo, principal=Principal("mallory", frozenset({"analyst"}))) as mallory:
        [withheld] = mallory.validation_history("trip_counts", trigger="materialize")
    seen, hidden = checks_of(shown), checks_of(withheld)
    key = ("expect_column_values_to_be_between", "trips_1h")
    assert 6 in seen[key].samples
    assert not seen[key].redacted
    assert hidden[key].samples == []
    assert hidden[key].redacted
    assert hidden[key].observed["unexpected_count"] == seen[key].observed["unexpected_count"]
    total = ("expect_column_sum_to_be_between", "trips_1h")
    assert "observed_value" in seen[total].observed
    assert "observed_value" not in hidden[total].observed
    # Another feature of the view stays readable for mallory.
    fare_max = ("expect_column_max_to_be_between", "fare_max")
    assert hidden[fare_max].observed["observed_value"] == 80.0


def test_erasing_a_driver_scrubs_the_recorded_values(repo: Path) -> None:
    with open_store(repo, trip_counts("warn", full_suite())) as store:
        store.materialize(START, END, ["trip_counts"], progress=False)
        [before] = store.validation_history("trip_counts", trigger="materialize")
        assert 6 in checks_of(before)[("expect_column_values_to_be_between", "trips_1h")].samples
        report = store.erase(entity={"driver_id": 1})
        [after] = store.validation_history("trip_counts", trigger="materialize")
    assert report.verified
    places = {(r.place, r.name) for r in report.removed}
    assert ("quality", "validation results of trip_counts") in places
    for check in after.checks:
        if check.source == "expectation":
            assert check.samples == [], check.check
            assert check.redacted, check.check
            assert "observed_value" not in check.observed
    assert [c.success for c in after.checks] == [c.success for c in before.checks]
