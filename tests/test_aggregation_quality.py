"""Statistics, validation and drift of an aggregated view, through the facade (and once each
through the CLI and REST), with real DuckDB and real Great Expectations, against a brute-force
oracle: an aggregated view's rows over a window are its values at every instant of the window,
one per key and event time (first copies only), computed point-in-time with the oracle of
:mod:`tests.aggregation_oracle`.

Trips of four drivers over four days: days 1 and 2 quiet (about 30 trips a driver and day),
days 3 and 4 busy (about 120), some trips replayed (a copy with another time, created later).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from access_repo import analysts_but_not_mallory
from aggregation_oracle import deduplicated, exact_value, window_rows
from api_server import Server

from featurestore import (
    Aggregation,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    PushSource,
)
from featurestore.errors import AccessDeniedError
from featurestore.governance.access import Principal
from featurestore.quality.expectations import load_great_expectations
from featurestore.quality.validation import Validation
from featurestore.types import Float64, Int64, String

COMMAND = str(Path(sys.executable).parent / "featurestore")
DAY = timedelta(days=1)
START = datetime(2026, 5, 1, tzinfo=UTC)
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
TRIPS_1D_LIMIT = 60
gx = load_great_expectations("the aggregated quality tests")


def _suite() -> Any:
    return gx.ExpectationSuite(
        name="trip_stats_suite",
        expectations=[
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="trips_1d", min_value=0, max_value=TRIPS_1D_LIMIT
            )
        ],
    )


def _view(source: FileSource | PushSource, mode: str = "warn") -> FeatureView:
    return FeatureView(
        name="trip_stats",
        entities=[DRIVER],
        source=source,
        schema=[
            Field(name="fare", dtype=Float64),
            Field(name="trip_id", dtype=Int64),
            Field(name="rider", dtype=String),
        ],
        aggregations=[
            Aggregation(column="trip_id", function="count", window=DAY, name="trips_1d"),
            Aggregation(column="fare", function="sum", window=timedelta(hours=1)),
            Aggregation(column="fare", function="max", window=timedelta(hours=1)),
            Aggregation(column="fare", function="mean", window=None),
            Aggregation(column="rider", function="count_distinct", window=timedelta(hours=6)),
            Aggregation(column="rider", function="last_k", window=timedelta(hours=1), k=2),
        ],
        event_id="trip_id",
        validation=Validation(_suite(), mode=mode),
    )


FILE = FileSource(
    path="data/trips.parquet", timestamp_field="event_timestamp", created_timestamp_column="created"
)


def _trips(seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    trip = 0
    for day in range(4):
        per_driver = 30 if day < 2 else 120
        for driver in (1, 2, 3, 4):
            for _ in range(rng.randrange(per_driver // 2, per_driver * 3 // 2)):
                ts = START + day * DAY + timedelta(seconds=rng.randrange(86_400))
                rows.append(
                    {
                        "driver_id": driver,
                        "event_timestamp": ts,
                        "created": ts + timedelta(seconds=rng.randrange(60)),
                        "fare": None
                        if rng.random() < 0.1
                        else round(rng.gammavariate(2.0, 7.0), 2),
                        "trip_id": trip,
                        "rider": rng.choice(["r1", "r2", "r3", "r4", "r5", None]),
                    }
                )
                trip += 1
    for original in rng.sample(rows, len(rows) // 20):  # replays: another time, created later
        copy = dict(original)
        copy["event_timestamp"] += timedelta(minutes=rng.randrange(-90, 90))
        copy["created"] = original["created"] + timedelta(hours=3)
        copy["fare"] = 999.0
        rows.append(copy)
    frame = pd.DataFrame(rows)
    frame["trip_id"] = frame["trip_id"].astype("int64")
    return frame


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    _trips(5).to_parquet(tmp_path / "data" / "trips.parquet")
    (tmp_path / "featurestore.yaml").write_text(
        f"project: aggq_{uuid.uuid4().hex[:8]}\n"
        f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}}}\n"
    )
    with FeatureStore(tmp_path) as store:
        store.apply([DRIVER, _view(FILE)])
    return tmp_path


@pytest.fixture
def store(repo: Path) -> Iterator[FeatureStore]:
    with FeatureStore(repo) as opened:
        yield opened


def _oracle_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for position, row in enumerate(frame.to_dict("records")):
        ts = row.pop("event_timestamp").to_pydatetime()
        created = row.pop("created").to_pydatetime()
        values = {name: None if pd.isna(value) else value for name, value in row.items()}
        rows.append({**values, "ts": ts, "created": created, "__file": 0, "__pos": position})
    return deduplicated(rows, ["driver_id"], "trip_id")


def _instant_values(
    view: FeatureView, rows: Sequence[Mapping[str, Any]], start: datetime, end: datetime
) -> dict[str, list[Any]]:
    """Every feature at every (driver, event time) of the window [start, end], by brute force."""
    instants = sorted({(r["driver_id"], r["ts"]) for r in rows if start <= r["ts"] <= end})
    values: dict[str, list[Any]] = {agg.name: [] for agg in view.aggregations}
    for driver, t in instants:
        for agg in view.aggregations:
            window = window_rows(rows, {"driver_id": driver}, t, agg.window)
            values[agg.name].append(exact_value(agg, window))
    return values


def test_statistics_profile_the_values_at_each_instant(repo: Path, store: FeatureStore) -> None:
    view = store.get_feature_view("trip_stats")
    start, end = START + DAY, START + 2 * DAY - timedelta(microseconds=1)
    stats = store.statistics("trip_stats", start, end)
    want = _instant_values(view, _oracle_rows(pd.read_parquet(repo / "data" / "trips.parquet")),
                           start, end)  # fmt: skip
    assert set(stats.profile.columns) == set(view.feature_names)
    assert stats.profile.rows == len(want["trips_1d"]) > 100
    for name, values in want.items():
        column = stats.profile.columns[name]
        present = [v for v in values if v is not None]
        assert (column.rows, column.nulls) == (len(values), len(values) - len(present)), name
        if name == "rider_last_k_1h":
            continue  # a list: profiled as categories; counts checked above
        numbers = np.array(present, dtype=float)
        assert column.min == pytest.approx(numbers.min(), rel=1e-9), name
        assert column.max == pytest.approx(numbers.max(), rel=1e-9), name
        assert column.mean == pytest.approx(numbers.mean(), rel=1e-9), name
        assert column.quantiles["p50"] == pytest.approx(np.quantile(numbers, 0.5), rel=1e-9)


def test_validation_checks_the_aggregated_values(repo: Path, store: FeatureStore) -> None:
    start, end = START + 2 * DAY, START + 3 * DAY
    result = store.validate("trip_stats", start, end)
    view = store.get_feature_view("trip_stats")
    values = _instant_values(view, _oracle_rows(pd.read_parquet(repo / "data" / "trips.parquet")),
                             start, end)["trips_1d"]  # fmt: skip
    over = sum(1 for v in values if v > TRIPS_1D_LIMIT)
    assert result.rows == len(values)
    [expectation] = [c for c in result.checks if c.source == "expectation"]
    assert expectation.column == "trips_1d"
    assert expectation.observed["unexpected_count"] == over > 0
    assert not result.success
    schema = {c.column: c.success for c in result.checks if c.check == "schema"}
    assert schema == dict.fromkeys(view.feature_names, True)
    quiet = store.validate("trip_stats", START + timedelta(hours=1), START + DAY)
    assert quiet.success, quiet.describe_failures()


def test_busy_days_drift_from_quiet_ones(repo: Path, store: FeatureStore) -> None:
    quiet = (START + DAY, START + 2 * DAY - timedelta(microseconds=1))
    busy = (START + 3 * DAY, START + 4 * DAY - timedelta(microseconds=1))
    outcome = store.drift("trip_stats", current_window=busy, reference_window=quiet)
    report = {f.feature: f for f in outcome.report.features}
    view = store.get_feature_view("trip_stats")
    assert set(report) == set(view.feature_names)
    assert report["trips_1d"].drifted
    assert outcome.report.drifted
    assert report["trips_1d"].current_rows == outcome.current.profile.rows
    with Server(store) as server:
        answer = httpx.get(
            f"{server.url}/v1/drift/trip_stats",
            params={
                "reference_window": f"{quiet[0].isoformat()}..{quiet[1].isoformat()}",
                "current_window": f"{busy[0].isoformat()}..{busy[1].isoformat()}",
            },
            timeout=60,
        )
    assert answer.status_code == 200, answer.text
    assert "trips_1d" in {f["feature"] for f in answer.json()["features"] if f["drifted"]}


def test_cli_stats_of_an_aggregated_view(repo: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    shown = subprocess.run(
        [COMMAND, "--repo", str(repo), "stats", "trip_stats", "--start",
         (START + DAY).isoformat(), "--end", (START + 2 * DAY).isoformat()],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "trips_1d" in shown.stdout
    assert "fare_mean_lifetime" in shown.stdout


def test_a_denied_principal_gets_no_statistics_validation_or_drift(repo: Path) -> None:
    root = Principal("root", frozenset({"admin"}))
    policies = analysts_but_not_mallory("trip_stats")
    with FeatureStore(repo, principal=root) as admin:
        admin.apply([DRIVER, _view(FILE), *policies])
    window = (START, START + DAY)
    with FeatureStore(repo, principal=Principal("bob", frozenset({"analyst"}))) as bob:
        assert bob.statistics("trip_stats", *window).profile.rows > 0
    with FeatureStore(repo, principal=Principal("mallory", frozenset({"analyst"}))) as mallory:
        for attempt in (
            lambda: mallory.statistics("trip_stats", *window),
            lambda: mallory.validate("trip_stats", *window),
            lambda: mallory.drift("trip_stats", current_window=window, reference_window=window),
        ):
            with pytest.raises(AccessDeniedError, match="no-trips-for-mallory"):
                attempt()
        # The recorded statistics (bob's) are listed, but without values for mallory.
        [recorded] = mallory.statistics_history("trip_stats")
        assert all(column.redacted for column in recorded.profile.columns.values())


def test_a_strict_push_checks_the_events_declared_columns(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    _trips(6).head(3).to_parquet(tmp_path / "data" / "trips.parquet")
    (tmp_path / "featurestore.yaml").write_text(
        f"project: aggq_{uuid.uuid4().hex[:8]}\n"
        f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}}}\n"
    )
    view = _view(PushSource(name="trips_push", batch_source=FILE), mode="strict")
    now = datetime.now(UTC)
    event = {
        "driver_id": [1], "event_timestamp": [now], "created": [now], "fare": [3.0],
        "trip_id": [10_000], "rider": ["r1"],
    }  # fmt: skip
    with FeatureStore(tmp_path) as store:
        store.apply([DRIVER, view])
        store.push("trips_push", event)  # events, not values: the suite is not theirs
        [result] = store.validation_history("trip_stats", trigger="push")
        assert result.success
        assert {c.column for c in result.checks} == {"fare", "trip_id", "rider"}
        online = store.get_online_features(["trip_stats:trips_1d"], [{"driver_id": 1}])
        assert online.to_dict()["trips_1d"] == [1]
        store.online.delete_project(store.project)
