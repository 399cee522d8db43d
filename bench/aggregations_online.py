"""Online windowed aggregations: single-entity lookup latency and push-to-lookup freshness.

    python bench/aggregations_online.py                         # Redis, 2,000 drivers x 30 days
    python bench/aggregations_online.py --online redis-cluster  # a 3+3 node cluster it starts
    python bench/aggregations_online.py --drivers 100000        # the issue's 100k drivers (slow)

The workload is the issue's: trips of ``--drivers`` drivers over the last 30 days (about
``--trips-per-day`` per driver, so ~117 events in a 7-day window), one aggregated view with 6
aggregations over 1h, 1d and 7d windows (``event_id="trip_id"``). It is materialized into the
online store (time and rows/s printed), then:

* **lookup**: ``store.get_online_features(6 refs, entity_rows=[{driver_id}]).to_dict()``, each
  call timed on its own, ``--iterations`` times with random drivers: p50 / p90 / p99 (the goal:
  p50 <= 0.5 ms on Redis). Latency depends on the events a key holds (its 7-day window), not on
  the number of drivers, so the default 2,000 drivers gives the same figure as 100k, faster;
* **freshness**: ``--pushes`` times, one trip is pushed for a random driver (``store.push``) and
  the very next lookup must count it (``trips_1h`` one higher): the share of pushes visible in
  the next lookup (must be 100%) and the push and push+lookup latencies.

Redis runs on database 12 under a key prefix of its own, removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from featurestore import Aggregation, Entity, FeatureStore, FeatureView, Field, FileSource
from featurestore.definitions.sources import PushSource
from featurestore.types import Float64, Int64

DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
AGGREGATIONS = [
    Aggregation(column="trip_id", function="count", window=HOUR, name="trips_1h"),
    Aggregation(column="fare", function="sum", window=HOUR),
    Aggregation(column="fare", function="mean", window=DAY),
    Aggregation(column="rider_id", function="count_distinct", window=DAY),
    Aggregation(column="fare", function="max", window=7 * DAY),
    Aggregation(column="fare", function="stddev", window=7 * DAY),
]


def trips_view() -> FeatureView:
    source = PushSource(
        name="trips_push",
        batch_source=FileSource(
            path="data/trips.parquet",
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
        ),
    )
    return FeatureView(
        name="driver_trip_stats",
        entities=[DRIVER],
        source=source,
        schema=[
            Field(name="fare", dtype=Float64),
            Field(name="rider_id", dtype=Int64),
            Field(name="trip_id", dtype=Int64),
        ],
        aggregations=AGGREGATIONS,
        event_id="trip_id",
    )


def write_trips(path: Path, drivers: int, days: int, per_day: float, now: datetime) -> int:
    rng = np.random.default_rng(14)
    n = int(drivers * days * per_day)
    span_us = days * 86_400_000_000
    end_us = int(now.timestamp() * 1_000_000) - 60_000_000
    stamps = end_us - rng.integers(0, span_us, n)
    frame = pd.DataFrame(
        {
            "driver_id": rng.integers(1, drivers + 1, n),
            "event_timestamp": pd.to_datetime(stamps, unit="us", utc=True),
            "fare": np.round(rng.gamma(2.0, 8.0, n), 2),
            "rider_id": rng.integers(1, 50_000, n),
            "trip_id": np.arange(n, dtype=np.int64),
        }
    )
    frame["created"] = frame["event_timestamp"]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, row_group_size=1_000_000)
    return n


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {
        "p50": pick(0.5),
        "p90": pick(0.9),
        "p99": pick(0.99),
        "mean": statistics.mean(samples) * 1000,
    }


def online_yaml(kind: str, prefix: str, folder: Path) -> tuple[str, Any]:
    if kind == "sqlite":
        return "{type: sqlite, path: data/online.db}", None
    if kind == "redis":
        return f"{{type: redis, url: 'redis://127.0.0.1:6379/12', key_prefix: '{prefix}'}}", None
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from redis_cluster import RedisClusterProcesses, free_cluster_ports

    cluster = RedisClusterProcesses(folder / "cluster", free_cluster_ports(6))
    cluster.create()
    return f"{{type: redis, url: '{cluster.url}', cluster: true, key_prefix: '{prefix}'}}", cluster


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--online", choices=["redis", "redis-cluster", "sqlite"], default="redis")
    parser.add_argument("--drivers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--trips-per-day", type=float, default=500 / 30)
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--pushes", type=int, default=500)
    args = parser.parse_args(argv)
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prefix = f"fsbench:{uuid.uuid4().hex[:8]}:"
        online, cluster = online_yaml(args.online, prefix, folder)
        try:
            (folder / "featurestore.yaml").write_text(
                f"project: aggbench\nonline_store: {online}\n"
            )
            rows = write_trips(folder / "data" / "trips.parquet", args.drivers, args.days,
                               args.trips_per_day, now)  # fmt: skip
            with FeatureStore(repo_path=folder) as store:
                run(store, args, rows, now)
                store.online.delete_project("aggbench")
        finally:
            if cluster is not None:
                cluster.stop()
    return 0


def run(store: FeatureStore, args: argparse.Namespace, rows: int, now: datetime) -> None:
    view = trips_view()
    store.apply([DRIVER, view])
    began = time.perf_counter()
    store.materialize(now - timedelta(days=args.days + 1), now)
    seconds = time.perf_counter() - began
    print(f"online store: {args.online}; {rows:,} trips of {args.drivers:,} drivers over "
          f"{args.days} days; 6 aggregations over 1h, 1d, 7d")  # fmt: skip
    print(f"materialize: {seconds:.1f} s ({rows / seconds:,.0f} events/s)")
    refs = [f"{view.name}:{agg.name}" for agg in AGGREGATIONS]
    rng = np.random.default_rng(7)
    drivers = rng.integers(1, args.drivers + 1, args.iterations + 200).tolist()
    for d in drivers[:200]:  # warm-up: plan cache, connections
        store.get_online_features(refs, entity_rows=[{"driver_id": d}]).to_dict()
    samples = []
    for d in drivers[200:]:
        t0 = time.perf_counter()
        store.get_online_features(refs, entity_rows=[{"driver_id": d}]).to_dict()
        samples.append(time.perf_counter() - t0)
    figures = percentiles(samples)
    print("lookup, 1 entity x 6 aggregations (ms): "
          + ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
          + f"  (goal p50 <= 0.5: {'met' if figures['p50'] <= 0.5 else 'NOT met'})")  # fmt: skip
    visible, push_times, fresh_times = 0, [], []
    next_trip = rows + 1
    for d in drivers[: args.pushes]:
        before = store.get_online_features([refs[0]], entity_rows=[{"driver_id": d}]).to_dict()
        at = datetime.now(timezone.utc)
        event = {"driver_id": [d], "event_timestamp": [at], "created": [at], "fare": [12.5],
                 "rider_id": [1], "trip_id": [next_trip]}  # fmt: skip
        next_trip += 1
        t0 = time.perf_counter()
        store.push("trips_push", event)
        t1 = time.perf_counter()
        after = store.get_online_features([refs[0]], entity_rows=[{"driver_id": d}]).to_dict()
        t2 = time.perf_counter()
        visible += after["trips_1h"][0] == before["trips_1h"][0] + 1
        push_times.append(t1 - t0)
        fresh_times.append(t2 - t0)
    push, fresh = percentiles(push_times), percentiles(fresh_times)
    print(f"freshness: {visible}/{args.pushes} pushes visible in the next lookup; push p50 "
          f"{push['p50']:.3f} ms p99 {push['p99']:.3f} ms; push + lookup p50 {fresh['p50']:.3f} ms "
          f"p99 {fresh['p99']:.3f} ms")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
