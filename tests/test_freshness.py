"""Freshness you can see: ``store.status()``, ``featurestore status``, ``/metrics``,
``/v1/feature-views/{name}`` and ``/health`` against a view's freshness objective, fed by
materialization, pushes and streams; a principal who may not describe a view does not see it.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from access_repo import COMMAND, ROOT, as_
from access_repo import make_repo as make_access_repo
from api_server import NOW, Server, driver_stats, make_repo, push, push_body
from conftest import require_redis
from stream_repo import STREAM_REDIS_URL, cleanup, client, event
from stream_repo import make_repo as make_stream_repo

from featurestore import FeatureStore
from featurestore.errors import DefinitionError


def row_of(store: FeatureStore, view: str) -> dict[str, object]:
    (row,) = [r for r in store.status() if r.view == view]
    return row.to_dict()


def test_materialize_and_push_move_the_newest_online_event(tmp_path: Path) -> None:
    store = make_repo(tmp_path, "{type: sqlite, path: data/online.db}")
    try:
        status = row_of(store, "driver_stats")
        newest = NOW - timedelta(minutes=10)  # the newest source row materialized
        assert status["newest_online_event"] == newest.isoformat()
        assert status["watermark"] is not None
        assert status["last_materialized"] is not None
        assert 590 <= float(status["online_age_seconds"]) < 3600  # type: ignore[arg-type]
        assert status["freshness_breached"] is False  # no objective
        store.push(
            "driver_stats_push",
            {
                "driver_id": [9],
                "event_timestamp": [NOW + timedelta(minutes=1)],
                "conv_rate": [0.1],
                "acc_rate": [0.2],
                "trips": [1],
            },
        )
        assert (
            row_of(store, "driver_stats")["newest_online_event"]
            == (NOW + timedelta(minutes=1)).isoformat()
        )
        # Another process sees it too (the log reached the registry).
        with FeatureStore(tmp_path) as other:
            assert (
                row_of(other, "driver_stats")["newest_online_event"]
                == (NOW + timedelta(minutes=1)).isoformat()
            )
        store.teardown()
        assert row_of(store, "driver_stats")["newest_online_event"] is None
    finally:
        store.close()


def test_objective_breach_in_status_health_metrics_and_the_view(tmp_path: Path) -> None:
    store = make_repo(tmp_path, "{type: sqlite, path: data/online.db}")
    stale = driver_stats()
    stale.freshness = timedelta(minutes=5)  # the newest online value is 10 minutes old
    store.apply([stale])  # governance metadata: no new version
    assert store.registry.current_version(store.project, "feature_view", "driver_stats") == 1
    assert row_of(store, "driver_stats")["freshness_breached"] is True
    with Server(store) as server:
        health = httpx.get(f"{server.url}/health", timeout=10)
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["checks"]["freshness"] == {"ok": False, "breached": ["driver_stats"]}
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert 'featurestore_view_freshness_breached{view="driver_stats"} 1.0' in metrics
        assert 'featurestore_view_online_age_seconds{view="driver_stats"}' in metrics
        body = httpx.get(f"{server.url}/v1/feature-views/driver_stats", timeout=10).json()
        assert body["freshness"]["freshness_objective_seconds"] == 300
        assert body["freshness"]["freshness_breached"] is True
        # A fresh push repairs it.
        push(server, push_body("online", 5, 0.4, datetime.now(UTC)))
        assert httpx.get(f"{server.url}/health", timeout=10).json()["status"] == "ok"
    result = subprocess.run(
        [COMMAND, "--repo", str(tmp_path), "status"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "driver_stats" in result.stdout
    stale.freshness = timedelta(seconds=1)
    store.apply([stale])
    result = subprocess.run(
        [COMMAND, "--repo", str(tmp_path), "status", "--json"], capture_output=True, text=True
    )
    assert result.returncode == 3  # a finding, as drift and validate report theirs
    rows = {row["view"]: row for row in json.loads(result.stdout)}
    assert rows["driver_stats"]["freshness_breached"] is True
    assert rows["customer_profile"]["freshness_breached"] is False
    store.close()


def test_stream_lag_is_reported(tmp_path: Path) -> None:
    require_redis(STREAM_REDIS_URL)
    store, topic = make_stream_repo(tmp_path)
    try:
        connection = client()
        for trip_id in range(1, 51):
            connection.xadd(topic, event(trip_id))
        consumer = store.stream_consumer(batch_size=100, block_ms=50)
        consumer.run(idle_seconds=0.5)
        consumer.close()
        for trip_id in range(51, 81):
            connection.xadd(topic, event(trip_id))
        connection.close()
        status = row_of(store, "trip_stats")
        assert status["stream_lag"] == 30
        assert status["newest_online_event"] is not None  # the consumer's writes count
    finally:
        store.teardown()
        store.close()
        cleanup(topic)


def test_status_lists_only_what_the_principal_may_describe(tmp_path: Path) -> None:
    repo, tokens = make_access_repo(tmp_path)
    with FeatureStore(repo, principal=ROOT) as admin:
        assert {r.view for r in admin.status()} == {"driver_stats", "customer_profile"}
    with as_(repo, tokens["mallory"]) as mallory:
        assert {r.view for r in mallory.status()} == {"driver_stats"}
    with as_(repo, tokens["ingestor"]) as nobody:
        assert nobody.status() == []
    with pytest.raises(DefinitionError, match="freshness must be a positive"):
        driver_stats().__class__(
            name="x", source=driver_stats().source, schema=[], freshness=timedelta(0)
        )
