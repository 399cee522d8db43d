"""The online commands through the real ``featurestore`` command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from featurestore import FeatureStore
from featurestore.online.base import CREATED_TS, EVENT_TS, Namespace

pytestmark = pytest.mark.slow

COMMAND = str(Path(sys.executable).parent / "featurestore")
T0 = datetime(2026, 1, 1, tzinfo=UTC)

DEFINITIONS = """\
from datetime import timedelta
from featurestore import Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from featurestore.types import Float32, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
trip = Entity(name="trip", join_keys=["city", "trip_no"], value_type={"city": String, "trip_no": Int64})
driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(hours=2),
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Int64)],
    source=PushSource(
        name="stats_push",
        batch_source=FileSource(path="data/stats.parquet", created_timestamp_column="created"),
    ),
)
trip_stats = FeatureView(
    name="trip_stats",
    entities=[trip],
    schema=[Field(name="fare", dtype=Float32)],
    source=FileSource(path="data/trips.parquet"),
)
svc = FeatureService(name="svc", features=[driver_stats[["conv_rate"]]])
"""


def run(
    repo: Path, *args: str, expect: int = 0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("FEATURESTORE_DEBUG", None)
    result = subprocess.run(
        [COMMAND, "--repo", str(repo), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        input=stdin,
    )
    assert result.returncode == expect, (result.stdout, result.stderr)
    return result


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    (root / "featurestore.yaml").write_text(
        "project: clionline\n"
        # Fixed dates in the past: keep rows stored long after their TTL (wall-clock expiry).
        "online_store: {type: sqlite, path: data/online.db, expiry_grace: 36500d}\n"
    )
    (root / "features.py").write_text(DEFINITIONS)
    hour = timedelta(hours=1)
    pd.DataFrame(
        {
            "driver_id": [1, 1, 2, 3],
            "event_timestamp": [T0, T0 + hour, T0, T0 - 5 * hour],
            "created": [T0, T0 + hour, T0, T0],
            "conv_rate": pd.Series([0.1, 0.25, 0.5, 0.75], dtype="float32"),
            "trips": pd.Series([1, 2, None, 4], dtype="Int64"),
        }
    ).to_parquet(root / "data" / "stats.parquet")
    frame = pd.DataFrame(
        {"city": ["a", "a1"], "trip_no": [11, 1], "event_timestamp": [T0, T0], "fare": [1.5, 2.5]}
    )
    frame["fare"] = frame["fare"].astype("float32")
    frame.to_parquet(root / "data" / "trips.parquet")
    run(root, "apply")
    return root


def test_materialize_then_lookup_table_and_json(repo: Path) -> None:
    out = run(repo, "materialize", "2025-12-31T00:00:00", "2026-01-01T01:00:00").stdout
    assert "driver_stats" in out
    # Naive END is UTC, 'now' is accepted.
    run(repo, "materialize-incremental", "now", "--views", "trip_stats")

    table = run(
        repo,
        "get-online-features",
        "--features",
        "driver_stats:conv_rate,driver_stats:trips",
        "--entity",
        "driver_id=1",
        "--entity",
        "driver_id=2",
        "--entity",
        "driver_id=99",
    ).stdout
    # Materialized at 01:00 but looked up "now": older than the 2 h TTL.
    assert "OUTSIDE_MAX_AGE" in table
    assert "driver_id" in table

    body = json.loads(
        run(
            repo,
            "get-online-features",
            "--features",
            "trip_stats:fare",
            "--entity",
            "city=a,trip_no=11",
            "--entity",
            "city=a1,trip_no=1",
            "--entity",
            "city=a,trip_no=1",
            "--json",
        ).stdout
    )
    assert body["metadata"] == {"feature_names": ["city", "trip_no", "fare"]}
    assert body["results"][0]["values"] == ["a", "a1", "a"]
    assert body["results"][1]["values"] == [11, 1, 1]
    assert body["results"][2]["values"] == [1.5, 2.5, None]
    assert body["results"][2]["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND"]
    assert body["results"][2]["event_timestamps"][0] == "2026-01-01T00:00:00Z"

    svc = json.loads(
        run(
            repo,
            "get-online-features",
            "--feature-service",
            "svc",
            "--entity",
            "driver_id=1",
            "--json",
        ).stdout
    )
    assert svc["metadata"]["feature_names"] == ["driver_id", "conv_rate"]

    bad = run(
        repo,
        "get-online-features",
        "--features",
        "driver_stats:trips",
        "--entity",
        "driver_id=x",
        expect=1,
    )
    assert "driver_id" in bad.stderr
    assert "Int64" in bad.stderr
    missing = run(
        repo,
        "get-online-features",
        "--features",
        "driver_stats:trips",
        "--entity",
        "city=a",
        expect=1,
    )
    assert "join key 'driver_id'" in missing.stderr


def test_consistency_check_exit_codes(repo: Path) -> None:
    end = "2026-01-01T01:00:00Z"
    run(repo, "materialize", "2025-12-31T00:00:00", end)
    ok = run(repo, "consistency-check", "--as-of", end, "--seed", "1", "--sample", "10")
    assert "consistent" in ok.stdout
    assert "conv_rate" in ok.stdout

    with FeatureStore(repo_path=repo) as store:
        view = store.get_feature_view("driver_stats")
        batch = pa.RecordBatch.from_pydict(
            {
                "driver_id": pa.array([1], pa.int64()),
                EVENT_TS: pa.array([int((T0 + timedelta(hours=1)).timestamp() * 1e6)], pa.int64()),
                CREATED_TS: pa.array([2**62], pa.int64()),
                "conv_rate": pa.array([0.99], pa.float32()),
                "trips": pa.array([2], pa.int64()),
            }
        )
        store.online.write_batch(Namespace(store.project, view, 1), batch)
    bad = run(repo, "consistency-check", "--as-of", end, "--views", "driver_stats", expect=1)
    assert "INCONSISTENT" in bad.stderr
    assert "1 mismatches" in bad.stderr
    assert "driver_stats:conv_rate" in bad.stdout
    usage = run(repo, "consistency-check", "--as-of", "yesterday", expect=2)
    assert "ISO-8601" in usage.stderr


def test_teardown_asks_unless_yes(repo: Path) -> None:
    run(repo, "materialize", "2025-12-31T00:00:00", "2026-01-01T01:00:00")
    declined = run(repo, "teardown", stdin="n\n", expect=1)
    assert "Aborted" in declined.stderr
    lookup = [
        "get-online-features",
        "--features",
        "trip_stats:fare",
        "--entity",
        "city=a,trip_no=11",
    ]
    assert "PRESENT" in run(repo, *lookup).stdout.split("fare")[1]
    out = run(repo, "teardown", "--yes").stdout
    assert "Removed" in out
    assert "NOT_FOUND" in run(repo, *lookup).stdout


def test_push_a_csv_file(repo: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "driver_id,event_timestamp,conv_rate,trips\n"
        "7,2026-01-01T00:30:00Z,0.625,3\n"
        "7,2026-01-01T00:10:00Z,0.5,2\n"
    )
    out = run(repo, "push", "stats_push", str(rows), "--to", "online_and_offline").stdout
    assert "pushed 2 row(s) to 'stats_push' (online_and_offline)" in out
    assert "driver_stats v1: 1 written" in out
    looked = run(
        repo,
        "get-online-features",
        "--features",
        "driver_stats:conv_rate",
        "--entity",
        "driver_id=7",
        "--json",
    ).stdout
    # The rows are historical, so "now" they are past the view's TTL; the latest one is stored.
    result = json.loads(looked)["results"][1]
    assert result["statuses"] == ["OUTSIDE_MAX_AGE"]
    assert result["event_timestamps"] == ["2026-01-01T00:30:00Z"]
    bad = tmp_path / "bad.csv"
    bad.write_text("driver_id,event_timestamp,conv_rate\n8,2026-01-01T00:30:00Z,0.5\n")
    error = run(repo, "push", "stats_push", str(bad), expect=1).stderr
    assert "missing column(s) ['trips']" in error
    assert "Traceback" not in error
