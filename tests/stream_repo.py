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

from featurestore import (
    Aggregation,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    StreamSource,
)
from featurestore.types import Float64, Int64, String

STREAM_REDIS_URL = os.environ.get("FEATURESTORE_TEST_STREAM_REDIS_URL", "redis://127.0.0.1:6379/5")
T0 = datetime(2026, 3, 1, tzinfo=UTC)
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
FEATURES = ["trip_stats:fare", "trip_stats:trip_id", "trip_stats:city"]
#: The aggregated view's features: every event counts (``trips``), so a replay counted twice shows.
AGGREGATES = ["trips", "fare_sum_1h", "fare_max_30m", "city_last_lifetime"]


def trip_events(topic: str, broker: str = STREAM_REDIS_URL) -> StreamSource:
    return StreamSource(
        name="trip_events",
        broker=broker,
        topic=topic,
        timestamp_field="event_timestamp",
        batch_source=FileSource(path="data/trips.parquet", created_timestamp_column="created"),
        event_id="trip_id",
    )


def aggregated_view(topic: str, broker: str = STREAM_REDIS_URL) -> FeatureView:
    """Windowed aggregations over the stream. No ``event_id`` on the view: a consumer's replays
    are recognized by stream position alone."""
    return FeatureView(
        name="trip_aggregates",
        entities=[DRIVER],
        schema=[
            Field(name="fare", dtype=Float64),
            Field(name="trip_id", dtype=Int64),
            Field(name="city", dtype=String),
        ],
        aggregations=[
            Aggregation(column="trip_id", function="count", window=None, name="trips"),
            Aggregation(column="fare", function="sum", window=timedelta(hours=1)),
            Aggregation(column="fare", function="max", window=timedelta(minutes=30)),
            Aggregation(column="city", function="last", window=None),
        ],
        source=trip_events(topic, broker),
    )


def stream_view(topic: str, broker: str = STREAM_REDIS_URL) -> FeatureView:
    source = trip_events(topic, broker)
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


def make_repo(
    tmp_path: Path, online: str = "sqlite", *, aggregated: bool = False
) -> tuple[FeatureStore, str]:
    """A repository (history: one trip of driver 0) and its topic. ``online``: ``sqlite``,
    ``redis`` (the shared test server) or an ``online_store`` mapping in YAML; ``aggregated``
    adds :func:`aggregated_view`, materialized up to the history so it counts that trip too."""
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
    online_yaml = {
        "sqlite": f"{{type: sqlite, path: {tmp_path / 'online.db'}, expiry_grace: 3650d}}",
        "redis": f"{{type: redis, url: '{STREAM_REDIS_URL}', expiry_grace: 3650d}}",
    }.get(online, online)
    (tmp_path / "featurestore.yaml").write_text(
        f"project: {project}\nregistry: sqlite:///{tmp_path / 'registry.db'}\n"
        f"online_store: {online_yaml}\n"
    )
    store = FeatureStore(tmp_path)
    store.apply([DRIVER, stream_view(topic), *([aggregated_view(topic)] if aggregated else [])])
    if aggregated:
        store.materialize(T0 - timedelta(days=1), T0, ["trip_aggregates"])
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
