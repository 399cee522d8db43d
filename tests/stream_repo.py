"""A repository with a stream source on the real Redis, shared by the stream tests.

The broker is Redis database 5 (127.0.0.1:6379, or ``FEATURESTORE_TEST_STREAM_REDIS_URL``); every
repository has its own topic and project, and :func:`cleanup` deletes its streams and lock.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import redis

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource, StreamSource
from featurestore.types import Float64, Int64, String

STREAM_REDIS_URL = os.environ.get("FEATURESTORE_TEST_STREAM_REDIS_URL", "redis://127.0.0.1:6379/5")
T0 = datetime(2026, 3, 1, tzinfo=UTC)
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
FEATURES = ["trip_stats:fare", "trip_stats:trip_id", "trip_stats:city"]


def stream_view(topic: str, broker: str = STREAM_REDIS_URL) -> FeatureView:
    source = StreamSource(
        name="trip_events",
        broker=broker,
        topic=topic,
        timestamp_field="event_timestamp",
        batch_source=FileSource(path="data/trips.parquet", created_timestamp_column="created"),
        event_id="trip_id",
    )
    return FeatureView(
        name="trip_stats",
        entities=[DRIVER],
        ttl=timedelta(days=3650),
        schema=[
            Field(name="fare", dtype=Float64),
            Field(name="trip_id", dtype=Int64),
            Field(name="city", dtype=String),
        ],
        source=source,
    )


def make_repo(tmp_path: Path, online: str = "sqlite") -> tuple[FeatureStore, str]:
    """A repository (history: one trip of driver 0) and its topic."""
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "driver_id": pd.Series([0], dtype="int64"),
            "event_timestamp": [T0],
            "created": [T0],
            "fare": [1.0],
            "trip_id": pd.Series([0], dtype="int64"),
            "city": ["origin"],
        }
    ).to_parquet(tmp_path / "data" / "trips.parquet")
    topic = f"fs-test-trips-{uuid.uuid4().hex[:10]}"
    project = f"stream_{uuid.uuid4().hex[:8]}"
    online_yaml = (
        f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}, expiry_grace: 3650d}}\n"
        if online == "sqlite"
        else f"online_store: {{type: redis, url: '{STREAM_REDIS_URL}', expiry_grace: 3650d}}\n"
    )
    (tmp_path / "featurestore.yaml").write_text(
        f"project: {project}\nregistry: sqlite:///{tmp_path / 'registry.db'}\n" + online_yaml
    )
    store = FeatureStore(tmp_path)
    store.apply([DRIVER, stream_view(topic)])
    return store, topic


def event(trip_id: int, drivers: int = 50) -> dict[str, str]:
    """Trip ``trip_id`` as a Redis Streams entry: text fields; several trips per driver and
    instant, so ties (same event and created time) are broken by stream order."""
    moment = T0 + timedelta(seconds=trip_id // 7)
    return {
        "driver_id": str(trip_id % drivers),
        "event_timestamp": moment.isoformat() if trip_id % 2 else str(moment.timestamp()),
        "created": moment.isoformat(),
        "fare": f"{(trip_id % 97) / 4:.2f}",
        "trip_id": str(trip_id),
        "city": ["paris", "lyon", ""][trip_id % 3],
    }


def client() -> Any:
    return redis.Redis.from_url(STREAM_REDIS_URL, decode_responses=True)


def cleanup(topic: str) -> None:
    connection = client()
    for key in connection.scan_iter(f"*{topic}*"):
        connection.delete(key)
    connection.close()
