"""Retention: the setting, retrieval that never serves rows older than the window, and
``enforce_retention`` / ``featurestore retention enforce`` on the data the store owns.

End-to-end tests run on the SQLite and Redis online stores with Parquet offline data (see
``governance_repo``). The bound is inclusive: a row exactly ``retention`` old stays, one a
microsecond older goes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from governance_repo import (
    BACKENDS,
    DAY,
    DRIVER,
    NOW,
    ago,
    all_definitions,
    driver_push,
    driver_stats,
    make_store,
    online_snapshot,
    parquet_rows,
    push_rows,
    run_cli,
    source_digests,
    store_files,
)

from featurestore import FeatureStore, FeatureView
from featurestore.config import parse_config
from featurestore.errors import ConfigError, DefinitionError, RetentionError
from featurestore.offline.base import FeatureRequest, LatestWindow
from featurestore.offline.duckdb.latest_sql import build_latest_sql
from featurestore.offline.duckdb.pit_sql import ViewSource, source_scan
from featurestore.online.codec import encode_keys
from featurestore.online.response import FieldStatus

WINDOW = 30 * DAY
CUTOFF = NOW - WINDOW


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeatureStore]:
    fs = make_store(tmp_path, str(request.param))
    try:
        yield fs
    finally:
        fs.teardown()
        fs.close()


def driver_key(driver_id: int) -> bytes:
    key: bytes = encode_keys(pa.table({"driver_id": [driver_id]}), ["driver_id"])[0].as_py()
    return key


def lookup(store: FeatureStore, feature: str, drivers: list[int]) -> tuple[list[Any], list[Any]]:
    response = store.get_online_features([feature], entity_rows=[{"driver_id": d} for d in drivers])
    name = feature.split(":")[1]
    return response.to_dict()[name], response.statuses[name]


def historical(store: FeatureStore, feature: str, rows: list[tuple[int, datetime]]) -> list[Any]:
    entity_df = pd.DataFrame(
        {"driver_id": [r[0] for r in rows], "event_timestamp": [r[1] for r in rows]}
    )
    frame = store.get_historical_features(entity_df, [feature]).to_pandas()
    return [None if pd.isna(v) else v for v in frame[feature.split(":")[1]]]


# -- the setting ------------------------------------------------------------------------------


def test_retention_must_be_a_positive_timedelta() -> None:
    assert driver_stats(timedelta(days=3)).retention == timedelta(days=3)
    assert driver_stats(None).retention is None
    for bad in (timedelta(0), -DAY, 30, "30d"):
        with pytest.raises(DefinitionError, match=r"feature view 'driver_stats': retention must"):
            driver_stats(bad)  # type: ignore[arg-type]


def test_retention_is_metadata_round_tripped_only_when_set() -> None:
    view = driver_stats(WINDOW)
    assert view.meta()["retention_seconds"] == WINDOW.total_seconds()
    assert "retention_seconds" not in driver_stats().meta()
    assert view.content_hash == driver_stats().content_hash  # no new version for retention
    assert FeatureView.from_dict(view.to_dict()).retention == WINDOW


def test_project_default_is_parsed_with_clear_errors(tmp_path: Path) -> None:
    base = {"project": "demo", "registry": "sqlite://"}
    assert parse_config(base, tmp_path).retention.default is None
    config = parse_config({**base, "retention": {"default": "365d"}}, tmp_path)
    assert config.retention.default == timedelta(days=365)
    assert parse_config({**base, "retention": {"default": 3600}}, tmp_path).retention.default == (
        timedelta(hours=1)
    )
    assert (
        parse_config({**base, "retention": {"default": None}}, tmp_path).retention.default is None
    )
    cases = [
        ({"default": "0d"}, r"retention.default must be a positive duration"),
        ({"default": "-3d"}, r"retention.default must be a non-negative duration"),
        ({"default": "a year"}, r"retention.default must be"),
        ({"defualt": "3d"}, r"unknown retention setting\(s\) \['defualt'\]"),
        ("365d", r"'retention' must be a mapping like \{default: 365d\}"),
    ]
    for value, message in cases:
        with pytest.raises(ConfigError, match=message):
            parse_config({**base, "retention": value}, tmp_path)


def test_changing_retention_records_metadata_and_keeps_the_version(tmp_path: Path) -> None:
    fs = make_store(tmp_path, "sqlite")
    with fs:
        fs.apply([DRIVER, driver_stats()])
        plan = fs.apply([DRIVER, driver_stats(WINDOW)])
        assert [c.change for c in plan.changes if c.name == "driver_stats"] == ["metadata"]
        assert fs.registry.current_version(fs.project, "feature_view", "driver_stats") == 1
        assert fs.get_feature_view("driver_stats").retention == WINDOW


# -- retrieval filters rows older than the window ------------------------------------------


def test_the_cutoff_is_one_condition_of_the_shared_source_scan() -> None:
    view = driver_stats(WINDOW)
    types = {"event_timestamp": "TIMESTAMP_NS", "driver_id": "BIGINT", "rate": "FLOAT"}
    plain = FeatureRequest(view, ("rate",), ("rate",))
    without = source_scan(ViewSource(plain, ("/d.parquet",), types), low_us=None, high_us=None)
    cut = replace(plain, not_before_us=1_700_000_000_000_000)
    scan = source_scan(ViewSource(cut, ("/d.parquet",), types), low_us=None, high_us=None)
    exact = 'epoch_us(CAST("event_timestamp" AS TIMESTAMPTZ)) >= 1700000000000000'
    prune = '"event_timestamp" >= CAST(make_timestamp(1699999999999999::BIGINT) AS TIMESTAMP_NS)'
    assert exact in scan
    assert prune in scan  # Parquet statistics can skip old row groups
    assert scan.replace(f" AND {exact}", "").replace(f" AND {prune}", "") == without
    # Materialization's query is built on the same scan.
    window = LatestWindow(start_us=None, end_us=1_800_000_000_000_000, not_before_us=1)
    latest = build_latest_sql(
        ViewSource(replace(plain, not_before_us=1), ("/d.parquet",), types), window
    )
    assert 'epoch_us(CAST("event_timestamp" AS TIMESTAMPTZ)) >= 1' in latest


def test_historical_retrieval_never_serves_rows_older_than_the_window(store: FeatureStore) -> None:
    store.apply([DRIVER, driver_stats()])
    rows = [(1001, ago(39)), (1001, NOW), (9, NOW), (8, NOW)]
    # Without retention, the 40-day-old rows of the user's file are served.
    assert historical(store, "driver_stats:rate", rows) == [0.25, 0.5, 1.5, 1.25]
    store.apply([DRIVER, driver_stats(WINDOW)])
    assert historical(store, "driver_stats:rate", rows) == [None, 0.5, None, 1.25]
    # Pinned to its version, the view follows the current setting too.
    assert historical(store, "driver_stats@1:rate", rows) == [None, 0.5, None, 1.25]


def test_the_project_default_applies_to_views_without_their_own(tmp_path: Path) -> None:
    fs = make_store(tmp_path, "sqlite", extra_yaml="retention: {default: 30d}\n")
    with fs:
        fs.apply([DRIVER, driver_stats()])
        assert fs.retention.of(fs.get_feature_view("driver_stats")) == WINDOW
        assert historical(fs, "driver_stats:rate", [(9, NOW), (8, NOW)]) == [None, 1.25]
        # A view's own window wins over the default, longer or shorter.
        fs.apply([DRIVER, driver_stats(60 * DAY)])
        assert historical(fs, "driver_stats:rate", [(9, NOW), (8, NOW)]) == [1.5, 1.25]


def test_materialization_skips_rows_older_than_the_window(store: FeatureStore) -> None:
    store.apply([DRIVER, driver_stats(WINDOW)])
    store.materialize(ago(100), NOW)
    values, statuses = lookup(store, "driver_stats:rate", [1001, 7, 8, 9])
    assert values == [0.5, 1.0, 1.25, None]
    assert statuses[3] is FieldStatus.NOT_FOUND
    # Driver 9 only has a 40-day-old row: it was never written.
    assert len(online_snapshot(store)["driver_stats v1"]) == 3


def test_online_lookups_treat_stored_rows_older_than_the_window_as_not_found(
    store: FeatureStore,
) -> None:
    store.apply([DRIVER, driver_stats()])
    store.materialize(ago(100), NOW)
    assert lookup(store, "driver_stats:rate", [9, 8]) == (
        [1.5, 1.25],
        [FieldStatus.PRESENT, FieldStatus.PRESENT],
    )
    store.apply([DRIVER, driver_stats(WINDOW)])
    store.close()  # a new lookup plan sees the new setting at once
    for drivers in ([9, 8], [*range(200), 9, 8]):  # small and vectorized paths
        values, statuses = lookup(store, "driver_stats:rate", drivers)
        assert values[-2:] == [None, 1.25]
        assert statuses[-2:] == [FieldStatus.NOT_FOUND, FieldStatus.PRESENT]
        response = store.get_online_features(["driver_stats:rate"], entity_rows=[{"driver_id": 9}])
        assert response.event_timestamps["rate"] == [None]
    # The row is still stored until retention is enforced.
    assert len(online_snapshot(store)["driver_stats v1"]) == 4


# -- enforce ----------------------------------------------------------------------------------


def boundary_repo(store: FeatureStore) -> None:
    """Views with a 30-day window over data on both sides of the cut-off, at microsecond
    precision: drivers 21/22/23 are a microsecond before, exactly at, and a microsecond after
    it, online (pushed) and offline (pushed); a saved dataset holds rows at the same instants."""
    store.apply(all_definitions(driver_stats=WINDOW, driver_push=WINDOW))
    store.materialize(ago(100), NOW)
    edge = [(21, CUTOFF - timedelta(microseconds=1), 1), (22, CUTOFF, 2)]
    edge.append((23, CUTOFF + timedelta(microseconds=1), 3))
    push_rows(store, edge, to="online_and_offline")
    push_rows(store, [(24, ago(45), 4), (25, ago(50), 5)], to="online_and_offline")  # all old
    push_rows(store, [(26, ago(2), 6)], to="offline")  # all recent
    entity_df = pd.DataFrame(
        {
            "driver_id": [21, 22, 23, 8],
            "event_timestamp": [CUTOFF - timedelta(microseconds=1), CUTOFF, ago(29), ago(1)],
        }
    )
    store.get_historical_features(entity_df, ["driver_stats:rate"]).save_dataset("train")


def test_enforce_removes_exactly_the_rows_older_than_the_window(store: FeatureStore) -> None:
    boundary_repo(store)
    sources = source_digests(store.repo_path)
    online_before, files_before = online_snapshot(store), store_files(store)
    report = store.enforce_retention(now=NOW)
    removed = {(r.place, r.name): r.rows for r in report.removed}
    pushed = sorted(
        p for p in files_before if "/push/" in p and p not in store_files(store)
    )  # the all-old push
    assert len(pushed) == 1
    assert [r["driver_id"] for r in files_before[pushed[0]]] == [24, 25]
    assert removed[("online", "driver_push v1")] == 3  # drivers 21, 24, 25
    assert removed[("dataset", "train")] == 1
    assert report.windows["driver_stats"] == WINDOW
    assert report.windows["pair_stats"] is None
    assert sum(r.rows for r in report.removed if r.place == "pushed") == 3
    # Online: exactly the keys older than the cut-off are gone, every other row is unchanged.
    online_after = online_snapshot(store)
    push_ns_before, push_ns_after = online_before["driver_push v1"], online_after["driver_push v1"]
    assert len(push_ns_before) - len(push_ns_after) == 3
    assert all(push_ns_before[k] == v for k, v in push_ns_after.items())
    assert {k: v for k, v in online_after.items() if k != "driver_push v1"} == {
        k: v for k, v in online_before.items() if k != "driver_push v1"
    }
    stored = set(push_ns_after)
    assert [driver_key(d) in stored for d in (21, 22, 23, 24, 25)] == [
        False,
        True,
        True,
        False,
        False,
    ]
    # Offline: the pushed rows at and after the cut-off stay, in their order; the file of all-old
    # rows is gone; the dataset keeps its rows at or after the cut-off.
    kept = [
        r["driver_id"]
        for path, rows in store_files(store).items()
        if "/push/" in path
        for r in rows
    ]
    assert sorted(kept) == [22, 23, 26]
    dataset = parquet_rows(Path(store.get_saved_dataset("train").location))
    assert [r["driver_id"] for r in dataset] == [22, 23, 8]
    assert store.get_saved_dataset("train").rows == 3
    assert source_digests(store.repo_path) == sources  # the user's files are never touched
    # A second run finds nothing more.
    assert store.enforce_retention(now=NOW).removed == []


def test_dry_run_reports_the_same_and_removes_nothing(store: FeatureStore) -> None:
    boundary_repo(store)
    online_before, files_before = online_snapshot(store), store_files(store)
    dry = store.enforce_retention(dry_run=True, now=NOW)
    assert dry.dry_run
    assert dry.total > 0
    assert online_snapshot(store) == online_before
    assert store_files(store) == files_before
    real = store.enforce_retention(now=NOW)
    assert [(r.place, r.name, r.rows) for r in dry.removed] == [
        (r.place, r.name, r.rows) for r in real.removed
    ]
    assert "would remove" in dry.summary()
    assert "removed" in real.summary()


def test_every_run_is_audited_with_its_counts(store: FeatureStore) -> None:
    boundary_repo(store)
    store.enforce_retention(dry_run=True, now=NOW)
    store.enforce_retention(now=NOW)
    records = [r for r in store.audit_log() if r.detail.get("run") == "retention"]
    assert [(r.action, r.resource, r.outcome, r.detail["dry_run"]) for r in records] == [
        ("delete", f"project:{store.project}", "ok", True),
        ("delete", f"project:{store.project}", "ok", False),
    ]
    assert records[1].detail["removed"] == {"online": 3, "pushed": 3, "dataset": 1}


def test_old_view_versions_are_cleaned_too(store: FeatureStore) -> None:
    store.apply([DRIVER, driver_stats()])
    store.materialize(ago(100), NOW)  # driver 9's 40-day-old row goes online in v1
    store.apply([DRIVER, driver_stats(WINDOW, ttl=365 * DAY)])  # v2, with a window
    store.materialize(ago(100), NOW)
    report = store.enforce_retention()
    assert [(r.place, r.name, r.rows) for r in report.removed] == [("online", "driver_stats v1", 1)]
    assert sorted(online_snapshot(store)) == ["driver_stats v1", "driver_stats v2"]


def test_a_push_source_shared_by_views_keeps_rows_for_the_shortest_window(
    tmp_path: Path,
) -> None:
    fs = make_store(tmp_path, "sqlite")
    with fs:
        fs.apply([DRIVER, driver_push(WINDOW), driver_push(90 * DAY, name="driver_push_long")])
        push_rows(fs, [(1, ago(60), 1), (2, ago(10), 2)], to="offline")
        report = fs.enforce_retention()
        assert [(r.place, r.rows) for r in report.removed] == [("pushed", 1)]
        assert [r["driver_id"] for rows in store_files(fs).values() for r in rows] == [2]


def test_a_view_without_a_window_keeps_everything(store: FeatureStore) -> None:
    store.apply(all_definitions())
    store.materialize(ago(100), NOW)
    push_rows(store, [(1, ago(3650), 1)], to="online_and_offline")
    online_before, files_before = online_snapshot(store), store_files(store)
    report = store.enforce_retention()
    assert report.removed == []
    assert set(report.windows.values()) == {None}
    assert online_snapshot(store) == online_before
    assert store_files(store) == files_before


def test_a_future_instant_is_refused(tmp_path: Path) -> None:
    fs = make_store(tmp_path, "sqlite")
    with fs:
        fs.apply([DRIVER, driver_stats()])  # only apply creates a registry
        with pytest.raises(RetentionError, match="is in the future"):
            fs.enforce_retention(now=datetime.now(UTC) + timedelta(hours=1))


# -- the command line -------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_retention_enforce(tmp_path: Path) -> None:
    fs = make_store(tmp_path, "sqlite")
    with fs:
        fs.apply(all_definitions(driver_push=WINDOW))
        push_rows(fs, [(1, ago(60), 1), (2, ago(10), 2)], to="online_and_offline")
        files_before = store_files(fs)
    dry = run_cli(tmp_path, "retention", "enforce", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove 2 row(s) and key(s) in 2 place(s)" in dry.stdout
    assert "window driver_push: 30d" in dry.stdout
    with FeatureStore(tmp_path) as fs:
        assert store_files(fs) == files_before
    done = run_cli(tmp_path, "retention", "enforce")
    assert done.returncode == 0, done.stderr
    assert "removed 2 row(s) and key(s)" in done.stdout
    assert "removed online driver_push v1: 1 key(s)" in done.stdout
    with FeatureStore(tmp_path) as fs:
        assert [r["driver_id"] for rows in store_files(fs).values() for r in rows] == [2]
        runs = [r for r in fs.audit_log() if r.detail.get("run") == "retention"]
        assert [r.detail["dry_run"] for r in runs] == [True, False]
    bad = run_cli(tmp_path, "retention", "enforce", "--dry-rn")
    assert bad.returncode == 2
    assert "No such option" in bad.stderr
