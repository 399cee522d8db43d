"""A small feature repository for the retention and erasure tests.

Data times count back from :data:`NOW` (a minute before the tests start, whole seconds), since
retention counts back from the wall clock. Every test gets its own folder and project; on Redis
(database 7 of the local server) the project's keys are removed afterwards, so nothing assumes an
empty database.

Entities: driver (Int64), customer (String) and trip (city String + trip_no Int64). Views:

* ``driver_stats`` - a user-owned file source keyed by driver;
* ``driver_push`` - a push source (batch file + rows pushed to the store's folder), by driver;
* ``pair_stats`` - keyed by driver *and* customer;
* ``trip_stats`` - keyed by the two-key trip entity.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from conftest import require_redis

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from featurestore.governance.holdings import Holdings
from featurestore.online import SupportsRowDeletion
from featurestore.types import Float32, Float64, Int64, String

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
DAY = timedelta(days=1)
REDIS_URL = os.environ.get("FEATURESTORE_TEST_GOVERNANCE_REDIS_URL", "redis://127.0.0.1:6379/7")
BACKENDS = ["sqlite", "redis"]

DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
CUSTOMER = Entity(name="customer", join_keys=["customer_id"], value_type=String)
TRIP = Entity(
    name="trip", join_keys=["city", "trip_no"], value_type={"city": String, "trip_no": Int64}
)
DRIVER_PUSH = PushSource(
    name="driver_push", batch_source=FileSource(path="data/driver_push.parquet")
)


def ago(days: float, microseconds: int = 0) -> datetime:
    return NOW - days * DAY + timedelta(microseconds=microseconds)


def driver_stats(retention: timedelta | None = None, ttl: timedelta | None = None) -> FeatureView:
    return FeatureView(
        name="driver_stats",
        entities=[DRIVER],
        ttl=ttl,
        retention=retention,
        schema=[Field(name="rate", dtype=Float32)],
        source=FileSource(path="data/driver_stats.parquet"),
    )


def driver_push(retention: timedelta | None = None, name: str = "driver_push") -> FeatureView:
    return FeatureView(
        name=name,
        entities=[DRIVER],
        retention=retention,
        schema=[Field(name="trips", dtype=Int64)],
        source=DRIVER_PUSH,
    )


def pair_stats() -> FeatureView:
    return FeatureView(
        name="pair_stats",
        entities=[DRIVER, CUSTOMER],
        schema=[Field(name="spend", dtype=Float64)],
        source=FileSource(path="data/pair.parquet"),
    )


def trip_stats() -> FeatureView:
    return FeatureView(
        name="trip_stats",
        entities=[TRIP],
        schema=[Field(name="fare", dtype=Float64)],
        source=FileSource(path="data/trips.parquet"),
    )


def all_definitions(**retention: timedelta | None) -> list[Any]:
    return [
        DRIVER,
        CUSTOMER,
        TRIP,
        driver_stats(retention.get("driver_stats")),
        driver_push(retention.get("driver_push")),
        pair_stats(),
        trip_stats(),
    ]


def write_sources(repo: Path) -> None:
    """The user-owned source files."""
    data = repo / "data"
    data.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "driver_id": [1001, 1001, 7, 7, 8, 9],
            "event_timestamp": [ago(40), ago(10), ago(40), ago(3), ago(1), ago(40)],
            "rate": pd.array([0.25, 0.5, 0.75, 1.0, 1.25, 1.5], dtype="float32"),
        }
    ).to_parquet(data / "driver_stats.parquet")
    pd.DataFrame(
        {"driver_id": [1001, 7], "event_timestamp": [ago(20), ago(20)], "trips": [3, 4]}
    ).to_parquet(data / "driver_push.parquet")
    pd.DataFrame(
        {
            "driver_id": [1001, 1001, 7],
            "customer_id": ["a", "b", "a"],
            "event_timestamp": [ago(5)] * 3,
            "spend": [1.0, 2.0, 3.0],
        }
    ).to_parquet(data / "pair.parquet")
    pd.DataFrame(
        {
            "city": ["Paris", "Paris", "Lyon"],
            "trip_no": [3, 4, 3],
            "event_timestamp": [ago(5)] * 3,
            "fare": [10.0, 20.0, 30.0],
        }
    ).to_parquet(data / "trips.parquet")


def online_yaml(backend: str, repo: Path) -> str:
    # The data is weeks old: a long grace keeps any TTL'd row from expiring during the test.
    if backend == "sqlite":
        return f"online_store: {{type: sqlite, path: {repo / 'online.db'}, expiry_grace: 3650d}}\n"
    require_redis(REDIS_URL)
    return f"online_store: {{type: redis, url: '{REDIS_URL}', expiry_grace: 3650d}}\n"


def make_store(
    repo: Path, backend: str, *, extra_yaml: str = "", online: str | None = None
) -> FeatureStore:
    """A new repository in ``repo`` with its own project; the caller tears it down. ``online``
    (an ``online_store:`` line) replaces the backend's own, e.g. for a Redis Cluster."""
    write_sources(repo)
    project = f"gov_{uuid.uuid4().hex[:10]}"
    (repo / "featurestore.yaml").write_text(
        f"project: {project}\nregistry: sqlite:///{repo / 'registry.db'}\n"
        + (online if online is not None else online_yaml(backend, repo))
        + extra_yaml
    )
    return FeatureStore(repo)


def push_rows(store: FeatureStore, rows: Sequence[tuple[int, datetime, int]], to: str) -> None:
    """Push ``(driver_id, event_timestamp, trips)`` rows to ``driver_push``."""
    store.push(
        "driver_push",
        {
            "driver_id": [r[0] for r in rows],
            "event_timestamp": [r[1] for r in rows],
            "trips": [r[2] for r in rows],
        },
        to=to,
    )


def online_snapshot(store: FeatureStore) -> dict[str, dict[bytes, bytes]]:
    """Every stored online row of the project, by namespace (``view vN``) and entity key."""
    online = store.online
    assert isinstance(online, SupportsRowDeletion)
    snapshot: dict[str, dict[bytes, bytes]] = {}
    for stored in Holdings(store.config, store.registry).views():
        keys = [key for batch in online.scan_entity_keys(stored.namespace) for key in batch]
        [values] = store.online.read_packed([(stored.namespace, keys)])
        rows = {k: v for k, v in zip(keys, values, strict=True) if v is not None}
        if rows:
            snapshot[stored.label] = rows
    return snapshot


def parquet_rows(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def store_files(store: FeatureStore) -> dict[str, list[dict[str, Any]]]:
    """The rows of every Parquet file in the store's data folder, by path."""
    root = store.config.data_dir
    return {str(p): parquet_rows(p) for p in sorted(root.rglob("*.parquet"))}


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_digests(repo: Path) -> dict[str, str]:
    """Hashes of the user-owned source files (which no run may change)."""
    return {p.name: file_digest(p) for p in sorted((repo / "data").glob("*.parquet"))}


#: The real console script, next to this interpreter.
CLI = Path(sys.executable).parent / "featurestore"


def run_cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``featurestore --repo REPO ARGS...`` in a subprocess."""
    return subprocess.run(
        [str(CLI), "--repo", str(repo), *args], capture_output=True, text=True, timeout=120
    )
