"""A small repository for the on-demand view tests: two views over seeded random data.

``driver_stats`` (Float32 / Float64 / Int64 / String features, nulls, TTL) keyed by an Int64
driver, ``customer_profile`` keyed by a String customer whose ids collide if concatenated, and a
request source ``ride`` (a Float64 distance and a String label). The on-demand functions live in
the test modules (their code must be in a file).
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource, RequestSource
from featurestore.types import Float32, Float64, Int64, String

#: Data ends a minute before import, on whole minutes: a lookup "now" (REST has no as_of) sees
#: what a retrieval at the same minute sees, since TTL bounds only move on whole minutes.
END = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
T0 = (END - timedelta(days=2)).replace(minute=0)
DRIVERS = 30
CUSTOMERS = ["a1", "a", "1a", "b", "", "11"]

DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
CUSTOMER = Entity(name="customer", join_keys=["customer_id"], value_type=String)
DRIVER_STATS = FeatureView(
    name="driver_stats",
    entities=[DRIVER],
    ttl=timedelta(hours=8),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="avg_speed", dtype=Float64),
        Field(name="trips", dtype=Int64),
        Field(name="tier", dtype=String),
    ],
    source=FileSource(path="data/drivers.parquet", created_timestamp_column="created"),
)
CUSTOMER_PROFILE = FeatureView(
    name="customer_profile",
    entities=[CUSTOMER],
    ttl=None,
    schema=[Field(name="age", dtype=Int64), Field(name="rating", dtype=Float64)],
    source=FileSource(path="data/customers.parquet"),
)
RIDE = RequestSource(
    name="ride",
    schema=[Field(name="distance_km", dtype=Float64), Field(name="label", dtype=String)],
)
BASE = [DRIVER, CUSTOMER, DRIVER_STATS, CUSTOMER_PROFILE]


def _maybe(rng: random.Random, value: object, null: float = 0.15) -> object:
    return None if rng.random() < null else value


def write_data(root: Path, seed: int) -> None:
    rng = random.Random(seed)
    rows = []
    for driver in range(DRIVERS):
        t = T0 + timedelta(minutes=rng.randrange(0, 300))
        while t <= END:
            rows.append(
                {
                    "driver_id": driver,
                    "event_timestamp": t,
                    "created": t + timedelta(minutes=rng.randrange(0, 10)),
                    "conv_rate": _maybe(rng, rng.random()),
                    "avg_speed": _maybe(rng, 0.0 if rng.random() < 0.1 else rng.uniform(5, 80)),
                    "trips": _maybe(rng, rng.randrange(0, 50)),
                    "tier": _maybe(rng, rng.choice(["gold", "silver", ""])),
                }
            )
            t += timedelta(minutes=rng.randrange(60, 900))
    drivers = pd.DataFrame(rows)
    drivers["conv_rate"] = drivers["conv_rate"].astype("float32")
    drivers["trips"] = drivers["trips"].astype("Int64")
    customers = pd.DataFrame(
        [
            {
                "customer_id": c,
                "event_timestamp": T0 + timedelta(hours=rng.randrange(0, 40)),
                "age": _maybe(rng, rng.randrange(18, 90)),
                "rating": _maybe(rng, rng.uniform(1, 5)),
            }
            for c in CUSTOMERS
            for _ in range(2)
        ]
    )
    customers["age"] = customers["age"].astype("Int64")
    (root / "data").mkdir(parents=True, exist_ok=True)
    drivers.to_parquet(root / "data" / "drivers.parquet")
    customers.to_parquet(root / "data" / "customers.parquet")


def make_store(root: Path, *, online: str | None = None, seed: int = 13) -> FeatureStore:
    """A store over fresh random data (SQLite online store unless ``online`` says otherwise)."""
    write_data(root, seed)
    online = online or "{type: sqlite, path: data/online.db, expiry_grace: 36500d}"
    project = f"ondemand_{uuid.uuid4().hex[:10]}"
    (root / "featurestore.yaml").write_text(f"project: {project}\nonline_store: {online}\n")
    return FeatureStore(repo_path=root)


def same_minute_now() -> datetime:
    """Now, at least 10 s before the next whole minute (waits if needed): a retrieval at this
    instant and a lookup made right after it see the same values."""
    now = datetime.now(UTC)
    if now.second >= 50:
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    return now


def entity_frame(seed: int, rows: int, *, at: datetime = END) -> pd.DataFrame:
    """Entity rows with request columns; some rows at ``at`` (the online instant)."""
    rng = random.Random(seed)
    return pd.DataFrame(
        {
            "driver_id": [rng.randrange(0, DRIVERS + 3) for _ in range(rows)],
            "customer_id": [rng.choice([*CUSTOMERS, "zz"]) for _ in range(rows)],
            "event_timestamp": [at] * rows,
            "distance_km": [
                None if rng.random() < 0.1 else round(rng.uniform(0, 30), 3) for _ in range(rows)
            ],
            "label": [rng.choice(["x", "yy", "", None]) for _ in range(rows)],
        }
    )
