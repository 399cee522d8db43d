"""A small repository for the write-time on-demand view tests, over seeded random data.

Two views keyed by an Int64 driver and without TTL: ``trip_stats`` (a file source with created
timestamps; nulls and zero trip counts) and ``driver_live`` (a push source whose batch file
holds some drivers, and drivers ``trip_stats`` does not know). Write-time views read both; the
brute-force oracle (:func:`oracle_inputs`) finds each driver's latest row of each source in the
raw rows, pushed ones included.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from featurestore.types import Float64, Int64, String

END = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
T0 = END - timedelta(days=2)
DRIVERS = 25  # trip_stats knows 0..24; driver_live also 25..29; 30..32 are nowhere

DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
TRIP_STATS = FeatureView(
    name="trip_stats",
    entities=[DRIVER],
    schema=[
        Field(name="avg_km", dtype=Float64),
        Field(name="trips", dtype=Int64),
        Field(name="tier", dtype=String),
    ],
    source=FileSource(path="data/trips.parquet", created_timestamp_column="created"),
)
DRIVER_LIVE = FeatureView(
    name="driver_live",
    entities=[DRIVER],
    schema=[Field(name="speed", dtype=Float64), Field(name="status", dtype=String)],
    source=PushSource(name="live_push", batch_source=FileSource(path="data/live.parquet")),
)
BASE = [DRIVER, TRIP_STATS, DRIVER_LIVE]


def _maybe(rng: random.Random, value: object, null: float = 0.15) -> object:
    return None if rng.random() < null else value


def _moments(rng: random.Random, count: int) -> list[datetime]:
    """Distinct instants between T0 and END (no two rows of a key tie)."""
    minutes = rng.sample(range(0, int((END - T0).total_seconds() // 60)), count)
    return sorted(T0 + timedelta(minutes=m) for m in minutes)


def write_data(root: Path, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the two sources' files; returns their rows (the oracle's raw data)."""
    rng = random.Random(seed)
    trips = []
    for driver in range(DRIVERS):
        for t in _moments(rng, rng.randrange(1, 5)):
            trips.append(
                {
                    "driver_id": driver,
                    "event_timestamp": t,
                    "created": t + timedelta(minutes=rng.randrange(0, 10)),
                    "avg_km": _maybe(rng, round(rng.uniform(0.5, 40), 3)),
                    "trips": _maybe(rng, rng.choice([0, *range(1, 30)])),
                    "tier": _maybe(rng, rng.choice(["gold", "silver", ""])),
                }
            )
    live = [
        {
            "driver_id": driver,
            "event_timestamp": t,
            "speed": _maybe(rng, round(rng.uniform(0, 80), 2)),
            "status": _maybe(rng, rng.choice(["idle", "busy", ""])),
        }
        for driver in rng.sample(range(DRIVERS + 5), 18)
        for t in _moments(rng, rng.randrange(1, 4))
    ]
    trips_frame, live_frame = pd.DataFrame(trips), pd.DataFrame(live)
    trips_frame["trips"] = trips_frame["trips"].astype("Int64")
    (root / "data").mkdir(parents=True, exist_ok=True)
    trips_frame.to_parquet(root / "data" / "trips.parquet")
    live_frame.to_parquet(root / "data" / "live.parquet")
    return trips_frame, live_frame


def make_store(root: Path, *, online: str | None = None) -> FeatureStore:
    """A store over the repository (SQLite online store unless ``online`` says otherwise)."""
    online = online or "{type: sqlite, path: data/online.db}"
    project = f"writetime_{uuid.uuid4().hex[:10]}"
    (root / "featurestore.yaml").write_text(f"project: {project}\nonline_store: {online}\n")
    return FeatureStore(repo_path=root)


def _latest(frame: pd.DataFrame, at: datetime) -> dict[int, dict[str, Any]]:
    """Each driver's latest row at ``at`` (by event time, then created time), as plain values."""
    found: dict[int, dict[str, Any]] = {}
    order = ["event_timestamp", *(["created"] if "created" in frame else [])]
    for row in frame.sort_values(order).to_dict("records"):
        if row["event_timestamp"] <= at:
            found[int(row["driver_id"])] = {
                k: (None if v is pd.NA or (isinstance(v, float) and v != v) else v)
                for k, v in row.items()
            }
    return found


def newest_event_us(
    trips: pd.DataFrame, live: pd.DataFrame, drivers: list[int], at: datetime
) -> list[int | None]:
    """Per driver, the newest event time (epoch µs) of its latest source rows at ``at``."""
    latest = [_latest(trips, at), _latest(live, at)]
    out: list[int | None] = []
    for driver in drivers:
        stamps = [rows[driver]["event_timestamp"] for rows in latest if driver in rows]
        out.append(max(stamps).value // 1000 if stamps else None)
    return out


def oracle_inputs(
    trips: pd.DataFrame, live: pd.DataFrame, drivers: list[int], at: datetime
) -> list[dict[str, Any] | None]:
    """Per driver, the inputs a write-time view sees (None: no source row at all)."""
    latest_trips, latest_live = _latest(trips, at), _latest(live, at)
    out: list[dict[str, Any] | None] = []
    for driver in drivers:
        trip, now = latest_trips.get(driver), latest_live.get(driver)
        if trip is None and now is None:
            out.append(None)
            continue
        out.append(
            {
                "avg_km": None if trip is None else trip["avg_km"],
                "trips": None if trip is None else trip["trips"],
                "tier": None if trip is None else trip["tier"],
                "speed": None if now is None else now["speed"],
                "status": None if now is None else now["status"],
            }
        )
    return out
