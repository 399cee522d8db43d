"""A small repository with a trips source and an aggregated view (shared by the tests)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from featurestore import Aggregation, Entity, FeatureStore, FeatureView, Field, FileSource
from featurestore.types import Float64, Int64, String

START = datetime(2026, 3, 1, tzinfo=UTC)
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
TRIPS = FileSource(
    path="data/trips.parquet", timestamp_field="event_timestamp", created_timestamp_column="created"
)


def trip_stats(**overrides: Any) -> FeatureView:
    """The aggregated view of the design's example (overrides replace keyword arguments)."""
    kwargs: dict[str, Any] = {
        "name": "driver_trip_stats",
        "entities": [DRIVER],
        "source": TRIPS,
        "schema": [
            Field(name="fare", dtype=Float64),
            Field(name="trip_id", dtype=Int64),
            Field(name="rider", dtype=String),
        ],
        "aggregations": [
            Aggregation(column="fare", function="sum", window=timedelta(hours=1)),
            Aggregation(column="fare", function="mean", window=timedelta(days=7)),
            Aggregation(
                column="trip_id", function="count", window=timedelta(days=1), name="trips_1d"
            ),
            Aggregation(column="rider", function="last_k", window=None, k=2),
        ],
        "event_id": "trip_id",
        "description": "trips per driver",
    }
    kwargs.update(overrides)
    return FeatureView(**kwargs)


def write_trips(path: Path) -> pd.DataFrame:
    """Six trips of drivers 1 and 2 over two hours."""
    times = [START + timedelta(minutes=m) for m in (0, 10, 70, 100, 5, 65)]
    frame = pd.DataFrame(
        {
            "driver_id": pd.Series([1, 1, 1, 1, 2, 2], dtype="int64"),
            "event_timestamp": times,
            "created": times,
            "fare": [10.0, 20.0, None, 5.0, 7.5, 2.5],
            "trip_id": pd.Series([1, 2, 3, 4, 5, 6], dtype="int64"),
            "rider": ["a", "b", "c", None, "d", "e"],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)
    return frame


def make_repo(root: Path, online: str = "{type: sqlite, path: data/online.db}") -> FeatureStore:
    """A repository with the trips source and the aggregated view, applied."""
    write_trips(root / "data" / "trips.parquet")
    project = f"aggs_{uuid.uuid4().hex[:10]}"
    (root / "featurestore.yaml").write_text(f"project: {project}\nonline_store: {online}\n")
    store = FeatureStore(repo_path=root)
    store.apply([DRIVER, trip_stats()])
    return store
