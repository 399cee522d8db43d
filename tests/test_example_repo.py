"""The example repository: its workload generator's invariants, and an apply + retrieval on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from example_data import REPO, load_generator

from featurestore import FeatureStore

COMMAND = str(Path(sys.executable).parent / "featurestore")
UTC_US = pa.timestamp("us", tz="UTC")


gen = load_generator()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A copy of ``repo/`` with XS data generated (ending now) into its ``data/`` folder."""
    target = tmp_path_factory.mktemp("example") / "repo"
    target.mkdir()
    for item in [*REPO.glob("*.py"), REPO / ".featurestoreignore", REPO / "featurestore.yaml"]:
        shutil.copy(item, target / item.name)
    before = datetime.now(UTC)
    result = gen.generate(target / "data", gen.workload_for("XS"), seed=7)
    # The period ends with the hour the data was generated in: its newest rows are that hour's.
    hour = timedelta(hours=1)
    assert before < result.end <= datetime.now(UTC) + hour
    assert result.end.minute == result.end.second == result.end.microsecond == 0
    return result


@pytest.fixture(scope="module")
def example_repo(generated: Any) -> Path:
    return Path(generated.out_dir).parent


def _read(repo: Path, name: str) -> pa.Table:
    return pq.read_table(repo / "data" / name)


def test_row_counts_and_gaps(example_repo: Path) -> None:
    workload = gen.workload_for("XS")
    drivers = _read(example_repo, gen.DRIVER_FILE)
    customers = _read(example_repo, gen.CUSTOMER_FILE)
    slots = workload.drivers * workload.days * 24
    assert drivers.num_rows / slots == pytest.approx(1 - gen.GAP_FRACTION, abs=0.02)
    customer_slots = workload.customers * workload.days
    assert customers.num_rows / customer_slots == pytest.approx(1 - gen.GAP_FRACTION, abs=0.04)
    assert _read(example_repo, gen.ENTITY_FILE).num_rows == workload.entity_rows
    # One row per (key, period) at most: the workload has no colliding keys.
    keys = drivers.select(["driver_id", "event_timestamp"]).group_by(
        ["driver_id", "event_timestamp"]
    )
    assert keys.aggregate([]).num_rows == drivers.num_rows


def test_timestamps_and_created_delay(example_repo: Path, generated: Any) -> None:
    workload = gen.workload_for("XS")
    end = gen.end_us(generated.end)
    start = workload.start_us(generated.end)
    for name, period_us in [(gen.DRIVER_FILE, gen.HOUR_US), (gen.CUSTOMER_FILE, gen.DAY_US)]:
        table = _read(example_repo, name)
        event = table["event_timestamp"].cast(pa.int64()).to_numpy()
        created = table["created"].cast(pa.int64()).to_numpy()
        delay = created - event
        assert delay.min() >= 0
        assert delay.max() <= 10 * 60 * 1_000_000
        assert event.min() >= start
        assert event.max() < end
        assert np.all((event - start) % period_us == 0)
    entity = _read(example_repo, gen.ENTITY_FILE)
    ts = entity["event_timestamp"].cast(pa.int64()).to_numpy()
    assert ts.min() >= start
    assert ts.max() < end


def test_dtypes(example_repo: Path) -> None:
    assert _read(example_repo, gen.DRIVER_FILE).schema.equals(gen.DRIVER_SCHEMA)
    assert _read(example_repo, gen.CUSTOMER_FILE).schema.equals(gen.CUSTOMER_SCHEMA)
    entity = _read(example_repo, gen.ENTITY_FILE)
    assert entity.schema.equals(gen.ENTITY_SCHEMA)
    assert entity.schema.field("event_timestamp").type == UTC_US


def test_same_seed_same_data(example_repo: Path, generated: Any, tmp_path: Path) -> None:
    # The same end: the clock may have reached the next hour since the fixture ran.
    end = generated.end
    gen.generate(tmp_path / "again", gen.workload_for("XS"), seed=7, end=end)
    gen.generate(tmp_path / "other", gen.workload_for("XS"), seed=8, end=end)
    for name in (gen.DRIVER_FILE, gen.CUSTOMER_FILE, gen.ENTITY_FILE):
        original = _read(example_repo, name)
        assert pq.read_table(tmp_path / "again" / name).equals(original)
        assert not pq.read_table(tmp_path / "other" / name).equals(original)


def test_benchmarks_keep_their_fixed_end(tmp_path: Path) -> None:
    workload = gen.workload_for("XS", entity_rows=100)
    result = gen.generate(tmp_path / "bench", workload, seed=7, end=gen.END)
    assert result.end == gen.END == datetime(2026, 10, 1, tzinfo=UTC)
    event = pq.read_table(result.driver_path)["event_timestamp"].cast(pa.int64()).to_numpy()
    assert event.max() == gen.end_us(gen.END) - gen.HOUR_US
    assert event.min() == workload.start_us(gen.END)
    # Every later run with that end gives the same files, whatever the day.
    again = gen.generate(tmp_path / "again", workload, seed=7, end=gen.END)
    for name in (gen.DRIVER_FILE, gen.CUSTOMER_FILE, gen.ENTITY_FILE):
        assert pq.read_table(again.out_dir / name).equals(pq.read_table(result.out_dir / name))
    with pytest.raises(ValueError, match="whole hour"):
        gen.generate(tmp_path / "odd", workload, end=gen.END + timedelta(minutes=30))


def test_unknown_ids_in_entity_frame(example_repo: Path) -> None:
    workload = gen.workload_for("XS", entity_rows=5_000)
    out = gen.generate(Path(example_repo).parent / "big_entities", workload, seed=7)
    drivers = pq.read_table(out.entity_path)["driver_id"].to_numpy()
    unknown = (drivers > workload.drivers).mean()
    assert unknown == pytest.approx(gen.UNKNOWN_ID_FRACTION, abs=0.01)


def test_cli_entry_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        gen.main(["--size", "XS", "--out", str(tmp_path), "--entity-rows", "10", "--seed", "1"])
        == 0
    )
    assert "10 entity rows" in capsys.readouterr().out
    assert pq.read_metadata(tmp_path / gen.ENTITY_FILE).num_rows == 10


def test_apply_and_retrieve(example_repo: Path) -> None:
    entity_df = _read(example_repo, gen.ENTITY_FILE).to_pandas()
    entity_df["row"] = np.arange(len(entity_df))
    with FeatureStore(repo_path=example_repo) as store:
        store.apply()
        names = {view.name for view in store.list_feature_views()}
        assert names == {"driver_hourly_stats", "customer_daily_profile", "driver_trip_stats"}
        result = store.get_historical_features(
            entity_df=entity_df, features=store.get_feature_service("driver_activity")
        ).to_pandas()
    assert len(result) == len(entity_df)
    assert result["row"].tolist() == list(range(len(entity_df)))
    assert result["driver_id"].tolist() == entity_df["driver_id"].tolist()
    features = {"conv_rate", "acc_rate", "avg_daily_trips", "trip_distance"}
    features |= {"avg_passenger_count", "lifetime_trip_count"}
    assert features <= set(result.columns)
    # The service leaves the PII balance out.
    assert "current_balance" not in result.columns
    # Unknown ids and TTL misses come back null; most rows find a value.
    missing = result["conv_rate"].isna()
    assert missing[result["driver_id"] > gen.workload_for("XS").drivers].all()
    assert 0 < missing.mean() < 0.2


def test_key_sorted_layout_orders_by_key_then_time(
    example_repo: Path, generated: Any, tmp_path: Path
) -> None:
    """``--layout key-sorted``: the same shape (slots, gaps, schema) sorted by key, then time,
    with the very same entity frame; the default layout stays in time order."""
    end = generated.end.isoformat()
    gen.main(
        [
            "--size",
            "XS",
            "--out",
            str(tmp_path),
            "--seed",
            "7",
            "--layout",
            "key-sorted",
            "--end",
            end,
        ]
    )
    assert gen.workload_for("XS", layout="key-sorted") != gen.workload_for("XS")
    for name, key in ((gen.DRIVER_FILE, "driver_id"), (gen.CUSTOMER_FILE, "customer_id")):
        by_key = pq.read_table(tmp_path / name)
        by_time = _read(example_repo, name)
        assert by_key.schema.equals(by_time.schema)
        assert by_key.num_rows == pytest.approx(by_time.num_rows, rel=0.03)
        keys = by_key[key].to_numpy()
        times = by_key["event_timestamp"].cast(pa.int64()).to_numpy()
        assert (np.diff(keys) >= 0).all()
        assert (np.diff(times)[np.diff(keys) == 0] > 0).all()
        assert (np.diff(by_time["event_timestamp"].cast(pa.int64()).to_numpy()) >= 0).all()
        assert not (np.diff(by_time[key].to_numpy()) >= 0).all()
    assert pq.read_table(tmp_path / gen.ENTITY_FILE).equals(_read(example_repo, gen.ENTITY_FILE))
    with pytest.raises(ValueError, match="unknown layout 'sideways'"):
        gen.workload_for("XS", layout="sideways")


def test_readme_commands_find_fresh_values(example_repo: Path, generated: Any) -> None:
    """The README's online commands on freshly generated data: relative instants, and lookups
    that answer PRESENT (they all answered None / OUTSIDE_MAX_AGE when the data ended on a
    fixed date)."""
    env = {**os.environ, "COLUMNS": "200"}

    def featurestore(*args: str) -> str:
        result = subprocess.run(
            [COMMAND, "--repo", str(example_repo), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert result.returncode == 0, (result.stdout, result.stderr)
        return result.stdout

    featurestore("apply")
    materialized = featurestore("materialize", "now-7d", "now")
    assert "driver_hourly_stats" in materialized
    assert "driver_trip_stats" in materialized
    # Every view, the aggregated one included: the trips stop before now, so its state holds
    # every trip an offline retrieval at any later instant reads.
    featurestore("consistency-check", "--as-of", "now", "--sample", "50", "--seed", "1")
    _trip_aggregates_agree(example_repo)

    drivers = _read(example_repo, gen.DRIVER_FILE).to_pandas()
    latest = drivers.sort_values("event_timestamp").groupby("driver_id").last()
    assert generated.end - timedelta(hours=1) == latest["event_timestamp"].max()
    with FeatureStore(repo_path=example_repo) as store:
        before = datetime.now(UTC)
        online = store.get_online_features(
            ["driver_hourly_stats:conv_rate"],
            entity_rows=[{"driver_id": int(key)} for key in latest.index],
        )
        after = datetime.now(UTC)
    statuses = [status.value for status in online.statuses["conv_rate"]]
    values = online.to_dict()["conv_rate"]
    ttl = timedelta(hours=2)
    for i, stamp in enumerate(latest["event_timestamp"]):
        # Served exactly when the latest value is within the TTL at lookup time.
        if after - stamp <= ttl:
            assert statuses[i] == "PRESENT", (i, stamp, after)
            assert values[i] == pytest.approx(float(latest["conv_rate"].iloc[i]), rel=1e-6)
        elif before - stamp > ttl:
            assert statuses[i] == "OUTSIDE_MAX_AGE", (i, stamp, before)
    if before < generated.end:
        # Within the hour the data was generated in, every driver with a row in the newest
        # hour (~90%; the rest are gaps) is served: that row is less than an hour old.
        assert statuses.count("PRESENT") >= 0.75 * len(statuses), statuses


def test_trips_are_events_of_known_drivers(example_repo: Path, generated: Any) -> None:
    workload = gen.workload_for("XS")
    trips = _read(example_repo, gen.TRIPS_FILE)
    expected = workload.drivers * workload.days * gen.TRIPS_PER_DRIVER_DAY
    assert trips.num_rows == pytest.approx(expected, rel=0.05)
    assert trips.num_rows == generated.trip_rows
    assert len(set(trips["trip_id"].to_pylist())) == trips.num_rows
    drivers = trips["driver_id"].to_numpy()
    assert drivers.min() >= 1
    assert drivers.max() <= workload.drivers
    assert trips["fare"].null_count / trips.num_rows == pytest.approx(
        gen.NULL_FARE_FRACTION, abs=0.02
    )
    start = gen.end_us(generated.end) - workload.days * gen.DAY_US
    times = trips["event_timestamp"].cast(pa.int64()).to_numpy()
    assert times.min() >= start
    # Trips stop at the start of the period's last hour (the hour of generation): none lies in
    # the future, so materializing up to now holds every trip a later retrieval reads.
    assert gen.trips_end_us(generated.end) == gen.end_us(generated.end) - gen.HOUR_US
    assert times.max() < gen.trips_end_us(generated.end)
    assert times.max() <= gen.end_us(datetime.now(UTC))


def test_the_quickstart_trip_aggregates_count_the_window(example_repo: Path) -> None:
    """The example's aggregated view, retrieved as the quickstart does, against pandas."""
    entity = _read(example_repo, gen.ENTITY_FILE).to_pandas().head(50)
    trips = _read(example_repo, gen.TRIPS_FILE).to_pandas()
    with FeatureStore(repo_path=example_repo) as store:
        store.apply()
        got = store.get_historical_features(
            entity, features=["driver_trip_stats:trips_1d", "driver_trip_stats:fare_sum_1d"]
        ).to_pandas()
    for row, (_, entity_row) in zip(got.itertuples(), entity.iterrows(), strict=True):
        t = entity_row["event_timestamp"]
        window = trips[
            (trips["driver_id"] == entity_row["driver_id"])
            & (trips["event_timestamp"] > t - timedelta(days=1))
            & (trips["event_timestamp"] <= t)
        ]
        assert row.trips_1d == len(window)
        fares = window["fare"].dropna()
        if fares.empty:
            assert np.isnan(row.fare_sum_1d)
        else:
            assert row.fare_sum_1d == pytest.approx(fares.sum(), rel=1e-9)


def _trip_aggregates_agree(repo: Path) -> None:
    """Every driver's trip aggregates online, at two later instants, equal offline retrieval
    at the same instants (the example's aggregated view is materialized)."""
    with FeatureStore(repo_path=repo) as store:
        view = store.get_feature_view("driver_trip_stats")
        assert view.online
        features = [f"driver_trip_stats:{name}" for name in view.feature_names]
        drivers = list(range(1, gen.workload_for("XS").drivers + 2))  # one unknown id
        for at in (datetime.now(UTC), datetime.now(UTC) + timedelta(hours=5)):
            online = store.get_online_features(
                features, entity_rows=[{"driver_id": d} for d in drivers], as_of=at
            ).to_dict()
            entity = pa.table({"driver_id": drivers, "event_timestamp": [at] * len(drivers)})
            offline = store.get_historical_features(entity, features).to_arrow().to_pydict()
            for name in view.feature_names:
                for got, want in zip(online[name], offline[name], strict=True):
                    assert got == want or got == pytest.approx(want, rel=1e-9), (name, at)
