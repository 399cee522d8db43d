"""Aggregated views online through every entry point (SQLite store): REST push and lookup on the
real server, the CLI's get-online-features, the access check (a denied principal reads
nothing), and retention (events older than the view's retention are never counted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pandas as pd
import pytest
from api_server import Server
from test_aggregations_online import DRIVER, _view

from featurestore import FeatureStore, Policy, Resource
from featurestore.errors import AccessDeniedError
from featurestore.governance.access import Principal

NOW = datetime.now(timezone.utc).replace(microsecond=0)
COMMAND = str(Path(sys.executable).parent / "featurestore")
ADMIN = Principal("root", frozenset({"admin"}))
POLICIES = [
    Policy(name="admins", roles=["admin"], actions=["admin"]),
    Policy(
        name="readers",
        principals=["bob"],
        actions=["describe", "read_online"],
        resources=[Resource(kind="feature_view", name="other_*")],
    ),
    Policy(
        name="cli-reads",
        principals=["anonymous"],
        actions=["describe", "read_online"],
        resources=[Resource(kind="feature_view", name="trip_stats")],
    ),
]


def _trips(rows: list[tuple[int, timedelta, float]]) -> pd.DataFrame:
    """Trips (driver, age before NOW, fare)."""
    stamps = [NOW - age for _, age, _ in rows]
    return pd.DataFrame(
        {
            "driver_id": pd.Series([d for d, _, _ in rows], dtype="int64"),
            "event_timestamp": pd.to_datetime(stamps, utc=True),
            "created": pd.to_datetime(stamps, utc=True),
            "fare": [f for _, _, f in rows],
            "rider": ["a"] * len(rows),
            "n": pd.Series([1] * len(rows), dtype="int64"),
            "trip_id": pd.Series(range(len(rows)), dtype="int64"),
        }
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    _trips(
        [(1, timedelta(minutes=10), 4.0), (1, timedelta(minutes=50), 6.0),
         (1, timedelta(hours=30), 100.0), (2, timedelta(minutes=5), 1.0)]
    ).to_parquet(tmp_path / "data" / "trips.parquet")  # fmt: skip
    (tmp_path / "featurestore.yaml").write_text(
        "project: aggentry\nonline_store: {type: sqlite, path: data/online.db}\n"
    )
    with FeatureStore(repo_path=tmp_path, principal=ADMIN) as store:
        store.apply([DRIVER, _view(), *POLICIES])
        store.materialize(NOW - timedelta(days=3), NOW)
    return tmp_path


REFS = ["trip_stats:fare_sum_1h", "trip_stats:fare_count_lifetime", "trip_stats:fare_sum_1d"]


def test_rest_push_then_lookup(repo: Path) -> None:
    with FeatureStore(repo_path=repo, principal=ADMIN) as store, Server(store) as server:
        body = {"features": REFS, "entities": {"driver_id": [1, 3]}}
        before = httpx.post(f"{server.url}/get-online-features", json=body, timeout=10).json()
        assert before["results"][1]["values"] == [10.0, None]
        assert before["results"][1]["statuses"] == ["PRESENT", "NOT_FOUND"]
        assert before["results"][2]["values"] == [3, 0]  # a count of nothing is 0
        push = {
            "push_source_name": "trip_stats_push",
            "df": {
                "driver_id": [1, 3], "event_timestamp": [NOW.isoformat()] * 2,
                "created": [NOW.isoformat()] * 2, "fare": [2.5, 7.0], "rider": ["b", "c"],
                "n": [1, 1], "trip_id": [500, 501],
            },
            "to": "online",
        }  # fmt: skip
        pushed = httpx.post(f"{server.url}/push", json=push, timeout=10)
        assert pushed.status_code == 200, pushed.text
        after = httpx.post(f"{server.url}/get-online-features", json=body, timeout=10).json()
        assert after["results"][1]["values"] == [12.5, 7.0]
        assert after["results"][2]["values"] == [4, 1]
        # The lookup answers for now: the sums of the day include the pushed trips.
        assert after["results"][3]["values"] == [12.5, 7.0]


def test_cli_get_online_features(repo: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        [COMMAND, "--repo", str(repo), "get-online-features", "--features", ",".join(REFS),
         "--entity", "driver_id=1", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert [r["values"] for r in body["results"][1:]] == [[10.0], [3], [10.0]]


def test_a_denied_principal_reads_nothing(repo: Path) -> None:
    bob = Principal("bob", frozenset())
    with (
        FeatureStore(repo_path=repo, principal=bob) as store,
        pytest.raises(AccessDeniedError, match="trip_stats"),
    ):
        store.get_online_features(REFS, entity_rows=[{"driver_id": 1}])


def test_retention_drops_old_events_from_every_window(repo: Path) -> None:
    with FeatureStore(repo_path=repo, principal=ADMIN) as store:
        ref = ["trip_stats:fare_count_lifetime", "trip_stats:fare_sum_lifetime"]
        assert store.get_online_features(ref, entity_rows=[{"driver_id": 1}]).to_dict()[
            "fare_sum_lifetime"
        ] == [110.0]
        store.apply([_view(retention=timedelta(hours=2))])
    with FeatureStore(repo_path=repo, principal=ADMIN) as store:
        out = store.get_online_features(ref, entity_rows=[{"driver_id": 1}]).to_dict()
        # The 30-hour-old trip is past retention: it no longer counts, even for lifetime.
        assert out["fare_count_lifetime"] == [2]
        assert out["fare_sum_lifetime"] == [10.0]


def test_materialization_is_idempotent_and_incremental_runs_agree(repo: Path) -> None:
    refs = [*REFS, "trip_stats:rider_last_k_lifetime", "trip_stats:fare_stddev_1d"]
    rows = [{"driver_id": 1}, {"driver_id": 2}]
    with FeatureStore(repo_path=repo, principal=ADMIN) as store:
        first = store.get_online_features(refs, entity_rows=rows).to_dict()
        store.materialize(NOW - timedelta(hours=1), NOW)  # the start does not matter
        assert store.get_online_features(refs, entity_rows=rows).to_dict() == first
        store.materialize_incremental(NOW)
        store.materialize_incremental(NOW)
        assert store.get_online_features(refs, entity_rows=rows).to_dict() == first
    assert first["fare_count_lifetime"] == [3, 1]
    assert first["rider_last_k_lifetime"] == [["a", "a", "a"], ["a"]]


def test_consistency_check_passes_on_an_aggregated_view(repo: Path) -> None:
    with FeatureStore(repo_path=repo, principal=ADMIN) as store:
        report = store.consistency_check(as_of=NOW, sample=10, seed=3)
    assert report.ok, report.render()
    assert {f.feature for f in report.features} >= {"fare_sum_1h", "rider_last_k_lifetime"}
