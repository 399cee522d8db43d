"""Erasure reaches what the store keeps besides rows: the quality history in the registry
(validation samples, statistics, drift reports hold feature values) and the staged files that a
push interrupted between staging and publishing leaves in the store's data folder. ``verified``
holds only when those were checked too.

Real registry (SQLite), real DuckDB statistics, real Great Expectations validation, real
staged files written the way the pusher writes them (``StoreData.stage``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from governance_repo import (
    NOW,
    ago,
    all_definitions,
    driver_push,
    driver_stats,
    make_store,
    parquet_rows,
    push_rows,
)

from featurestore import FeatureStore
from featurestore.offline.store_data import STALE_STAGED_SECONDS, StoreData
from featurestore.quality.expectations import load_great_expectations
from featurestore.quality.validation import Validation

gx = load_great_expectations("the erasure residue tests")
#: Driver 1001's rates in the source (no other driver has them).
ERASED_RATES = {0.25, 0.5}
REFERENCE = (ago(50), ago(20))
CURRENT = (ago(15), NOW)


def validated_driver_stats() -> Any:
    """driver_stats, whose suite fails on driver 1001's rates (they become samples)."""
    view = driver_stats()
    view.validation = Validation(
        gx.ExpectationSuite(
            name="rates",
            expectations=[
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column="rate", min_value=0.6, max_value=2.0
                )
            ],
        ),
        mode="warn",
    )
    return view


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    fs = make_store(tmp_path, "sqlite")
    try:
        definitions = [
            validated_driver_stats() if getattr(d, "name", "") == "driver_stats" else d
            for d in all_definitions()
        ]
        fs.apply(definitions)
        yield fs
    finally:
        fs.teardown()
        fs.close()


def history(store: FeatureStore, view: str = "driver_stats") -> dict[str, Any]:
    return {
        "validations": [r.to_dict() for r in store.validation_history(view)],
        "statistics": [s.to_dict() for s in store.statistics_history(view)],
        "dataset": [s.to_dict() for s in store.statistics_history("train", dataset=True)],
        "drift": store.drift_history(view),
    }


def rate_values(records: dict[str, Any]) -> set[float]:
    """Every value of the rate feature the records hold: samples, statistics, drift bins."""
    found: set[float] = set()
    for result in records["validations"]:
        for check in result["checks"]:
            if check["column"] == "rate":
                found.update(check["samples"])
    for stats in records["statistics"] + records["dataset"]:
        column = stats["profile"]["columns"].get("rate")
        if column is not None:
            found.update(v for v, _ in column["top_values"])
            found.update(v for v in (column["min"], column["max"]) if v is not None)
            found.update(column["grid"])
    for report in records["drift"]:
        for feature in report["features"]:
            found.update(len(feature["bins"]) * [-1.0])  # any bin is a value's edge
    return found


def test_erase_scrubs_the_quality_history_and_verifies_it(store: FeatureStore) -> None:
    store.materialize(ago(100), NOW)  # validated: 1001's latest rate fails the suite
    store.validate("driver_stats")  # every row: both of 1001's rates are samples
    store.statistics("driver_stats")
    store.statistics("trip_stats")
    store.drift("driver_stats", current_window=CURRENT, reference_window=REFERENCE)
    entity_df = pa.table({"driver_id": [1001, 7], "event_timestamp": [NOW, NOW]})
    store.get_historical_features(entity_df, ["driver_stats:rate"]).save_dataset("train")
    before = history(store)
    assert rate_values(before) >= ERASED_RATES  # the residue is real
    trips_before = [s.to_dict() for s in store.statistics_history("trip_stats")]

    report = store.erase(entity={"driver_id": 1001})

    after = history(store)
    assert rate_values(after) == set()
    assert json.dumps(after).count('"redacted": true') >= 4
    for result in after["validations"]:
        for check in result["checks"]:
            if check["source"] == "expectation":
                assert check["samples"] == []
                assert "0.25" not in check["message"]
    # Counts and outcomes stay.
    assert [r["success"] for r in after["validations"]] == [
        r["success"] for r in before["validations"]
    ]
    assert after["statistics"][0]["profile"]["columns"]["rate"]["rows"] == 6
    # Another entity's view keeps its values.
    assert [s.to_dict() for s in store.statistics_history("trip_stats")] == trips_before
    assert report.verified
    places = {(r.place, r.name): r.rows for r in report.removed}
    assert places[("quality", "validation results of driver_stats")] == 2
    assert places[("quality", "statistics of driver_stats")] == 3  # one, then drift's two
    assert places[("quality", "drift reports of driver_stats")] == 1
    assert places[("quality", "statistics of dataset train")] == 1
    assert any("quality history" in note for note in report.notes)

    again = store.erase(entity={"driver_id": 1001})
    assert again.verified
    assert [r for r in again.removed if r.place == "quality"] == []
    # The dataset's statistics were scrubbed: a drift check against it profiles the
    # rewritten file again, without 1001.
    outcome = store.drift("driver_stats", current_window=CURRENT, reference_dataset="train")
    assert outcome.reference.profile.rows == 1
    assert not outcome.reference.profile.columns["rate"].redacted


def test_dry_run_counts_quality_records_and_changes_none(store: FeatureStore) -> None:
    store.validate("driver_stats")
    before = history(store)
    dry = store.erase(entity={"driver_id": 1001}, dry_run=True)
    assert ("quality", "validation results of driver_stats") in {
        (r.place, r.name) for r in dry.removed
    }
    assert history(store) == before


def stage_push(store: FeatureStore, driver_ids: list[int], *, age: float = 0.0) -> Path:
    """A staged, never published push to driver_push, as a push killed before its commit
    leaves it; ``age`` seconds old."""
    table = pa.table(
        {
            "driver_id": pa.array(driver_ids, pa.int64()),
            "event_timestamp": pa.array([ago(1)] * len(driver_ids), pa.timestamp("us", "UTC")),
            "trips": pa.array([60 + i for i in range(len(driver_ids))], pa.int64()),
        }
    )
    staged = StoreData(store.config).stage("driver_push", table).staged
    if age:
        moment = time.time() - age
        os.utime(staged, (moment, moment))
    return staged


def driver_ids_in_staged_files(store: FeatureStore) -> list[int]:
    root = store.config.data_dir
    return sorted(
        row["driver_id"]
        for path in root.rglob(".*.tmp")
        for row in parquet_rows(path)
        if "driver_id" in row
    )


def test_erase_cleans_staged_files_of_interrupted_pushes(store: FeatureStore) -> None:
    push_rows(store, [(1001, ago(2), 30), (7, ago(2), 40)], to="offline")
    fresh = stage_push(store, [1001, 7])  # maybe a push still under way: filtered, kept
    stale = stage_push(store, [1001, 8], age=2 * STALE_STAGED_SECONDS)  # left behind: deleted
    assert driver_ids_in_staged_files(store) == [7, 8, 1001, 1001]

    report = store.erase(entity={"driver_id": 1001})

    assert report.verified, report.summary()
    staged = {r.path: r.rows for r in report.removed if r.place == "staged"}
    assert staged == {str(fresh): 1, str(stale): 2}
    assert not stale.exists()
    assert [row["driver_id"] for row in parquet_rows(fresh)] == [7]
    assert driver_ids_in_staged_files(store) == [7]


def test_an_unreadable_staged_file_fails_the_check_until_it_is_stale(
    store: FeatureStore,
) -> None:
    folder = StoreData(store.config).push_folder("driver_push")
    folder.mkdir(parents=True, exist_ok=True)
    cut_short = folder / ".part-00000000000000001-deadbeef.parquet.tmp"
    cut_short.write_bytes(b"PAR1 cut short by a crash")

    report = store.erase(entity={"driver_id": 1001})
    assert not report.verified
    assert [r.path for r in report.residue] == [str(cut_short)]
    assert "NOT VERIFIED" in report.summary()

    moment = time.time() - 2 * STALE_STAGED_SECONDS
    os.utime(cut_short, (moment, moment))
    report = store.erase(entity={"driver_id": 1001})
    assert report.verified
    assert not cut_short.exists()


def test_the_next_push_discards_stale_staged_files(store: FeatureStore) -> None:
    fresh = stage_push(store, [7])
    stale = stage_push(store, [1001], age=2 * STALE_STAGED_SECONDS)
    push_rows(store, [(9, ago(1), 5)], to="offline")
    assert not stale.exists()
    assert fresh.exists()  # may still be published by the push that staged it
    published = StoreData(store.config).pushed_files("driver_push")
    assert [row["driver_id"] for p in published for row in pq.read_table(p).to_pylist()] == [9]


def test_a_deleted_views_history_is_scrubbed_too(store: FeatureStore) -> None:
    store.validate("driver_stats")
    kept = [d for d in all_definitions() if getattr(d, "name", "") != "driver_stats"]
    store.apply(kept, delete_missing=True)
    report = store.erase(entity={"driver_id": 1001})
    assert report.verified
    assert ("quality", "validation results of driver_stats") in {
        (r.place, r.name) for r in report.removed
    }


def test_a_passing_push_validation_held_in_memory_is_scrubbed_too(store: FeatureStore) -> None:
    """Passing push validations are recorded together later; erasure records them first."""
    view = driver_push()
    view.validation = Validation(
        gx.ExpectationSuite(
            name="trips",
            expectations=[
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column="trips", min_value=0, max_value=10, mostly=0.5
                )
            ],
        ),
        mode="warn",
    )
    store.apply([view])
    push_rows(store, [(1001, ago(1), 31), (7, ago(1), 4)], to="online")  # passes, 31 a sample

    report = store.erase(entity={"driver_id": 1001})

    assert report.verified
    [pushed] = store.validation_history("driver_push", trigger="push")
    [check] = [c for c in pushed.checks if c.source == "expectation"]
    assert check.success
    assert check.redacted
    assert check.samples == []


def test_retention_and_the_next_save_discard_stale_staged_files(store: FeatureStore) -> None:
    fresh = stage_push(store, [7])
    stale = stage_push(store, [1001], age=2 * STALE_STAGED_SECONDS)
    dry = store.enforce_retention(dry_run=True)
    assert [(r.place, r.path, r.rows) for r in dry.removed] == [("staged", str(stale), 1)]
    assert stale.exists()
    done = store.enforce_retention()
    assert [(r.place, r.path) for r in done.removed] == [("staged", str(stale))]
    assert not stale.exists()
    assert fresh.exists()

    datasets = store.config.data_dir / store.project / "datasets"
    datasets.mkdir(parents=True)
    left = datasets / ".train.0badc0de.parquet.tmp"
    left.write_bytes(b"PAR1 cut short")
    moment = time.time() - 2 * STALE_STAGED_SECONDS
    os.utime(left, (moment, moment))
    entity_df = pa.table({"driver_id": [7], "event_timestamp": [NOW]})
    store.get_historical_features(entity_df, ["driver_stats:rate"]).save_dataset("train")
    assert not left.exists()
    assert (datasets / "train.parquet").exists()
