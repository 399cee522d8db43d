"""Stream ingestion into Redis: sustained events/s on one consumer, and the delay from produce to
online at half that rate.

    python bench/stream.py                      # 500,000 events backlog, then 60 s at 50% rate
    python bench/stream.py --events 200000 --seconds 20

1. **Throughput.** ``--events`` trip events are written to a Redis stream first; one consumer
   (this process, Redis online store in database 10 under the run's own project) then drains them;
   events/s = events / seconds to drain, with the consumer's peak memory.
2. **Delay.** A producer process writes events stamped with the time they are produced, at 50% of
   the measured rate, for ``--seconds``; the consumer reports, for a sample of every batch, the
   seconds from that stamp to the end of the batch's write (online, offline and acknowledged, so
   the value was visible online no later than that). p50 and p99 are printed.

Goals (issue 15): at least 50,000 events/s, p99 delay at most 100 ms.
The tool a user would otherwise use is Feast's stream processor, which needs Spark Structured
Streaming and Kafka (neither runs here); this benchmark has no Feast side.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import OUR_REDIS_DB, REDIS_HOST, REDIS_PORT, machine_summary, peak_rss_mb, work_dir

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource, StreamSource
from featurestore.types import Float64, Int64, String

BROKER = f"redis://{REDIS_HOST}:{REDIS_PORT}/{OUR_REDIS_DB}"
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)


def view(topic: str) -> FeatureView:
    return FeatureView(
        name="trip_stats",
        entities=[DRIVER],
        ttl=timedelta(days=3650),
        schema=[
            Field(name="fare", dtype=Float64),
            Field(name="trip_id", dtype=Int64),
            Field(name="city", dtype=String),
        ],
        source=StreamSource(
            name="trip_events",
            broker=BROKER,
            topic=topic,
            batch_source=FileSource(path="data/trips.parquet"),
        ),
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--drivers", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    print(machine_summary())
    topic = f"bench-trips-{uuid.uuid4().hex[:8]}"
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=OUR_REDIS_DB)
    with work_dir(args.keep) as work:
        store = _store(work, topic)
        try:
            print(f"producing a backlog of {args.events:,} events ...", flush=True)
            _produce_backlog(client, topic, args.events, args.drivers)
            consumer = store.stream_consumer(batch_size=args.batch_size, compact_every=1e9)
            started = time.perf_counter()
            report = consumer.run(max_events=args.events)
            drain = time.perf_counter() - started
            rate = report.events / drain
            print(
                f"throughput: {report.events:,} events in {drain:.2f} s = {rate:,.0f} events/s "
                f"({report.batches} batches); consumer peak memory {peak_rss_mb():,.0f} MiB"
            )
            target = rate / 2
            consumer.metrics.recent_delays.clear()
            stop = threading.Event()
            thread = threading.Thread(target=consumer.run, args=(stop,))
            thread.start()
            producer = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--produce",
                    BROKER,
                    topic,
                    str(target),
                    str(args.seconds),
                    str(args.drivers),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            time.sleep(1.0)
            stop.set()
            thread.join()
            consumer.close()
            delays = sorted(consumer.metrics.recent_delays)
            print(producer.stdout.strip())
            p50 = statistics.median(delays) * 1000
            p99 = delays[int(len(delays) * 0.99)] * 1000
            print(
                f"delay at {target:,.0f} events/s (50%): p50 {p50:.1f} ms, p99 {p99:.1f} ms "
                f"({len(delays):,} sampled events); consumer peak memory {peak_rss_mb():,.0f} MiB"
            )
            print(f"goals: >= 50,000 events/s -> {rate:,.0f}; p99 <= 100 ms -> {p99:.1f} ms")
        finally:
            store.teardown()
            store.close()
            for key in client.scan_iter(f"*{topic}*"):
                client.delete(key)
    return 0


def _store(work: Path, topic: str) -> FeatureStore:
    (work / "data").mkdir()
    pd.DataFrame(
        {
            "driver_id": pd.Series([0], dtype="int64"),
            "event_timestamp": [datetime(2026, 1, 1, tzinfo=UTC)],
            "fare": [1.0],
            "trip_id": pd.Series([0], dtype="int64"),
            "city": ["x"],
        }
    ).to_parquet(work / "data" / "trips.parquet")
    (work / "featurestore.yaml").write_text(
        f"project: bench_stream_{uuid.uuid4().hex[:6]}\n"
        f"online_store: {{type: redis, url: '{BROKER}'}}\n"
    )
    store = FeatureStore(work)
    store.apply([DRIVER, view(topic)])
    return store


def _event(trip_id: int, drivers: int, stamp: float) -> dict[str, str]:
    return {
        "driver_id": str(trip_id % drivers),
        "event_timestamp": f"{stamp:.6f}",
        "fare": f"{(trip_id % 997) / 10:.1f}",
        "trip_id": str(trip_id),
        "city": "paris" if trip_id % 2 else "lyon",
    }


def _produce_backlog(client: redis.Redis, topic: str, events: int, drivers: int) -> None:
    stamp = time.time() - 3600
    pipe = client.pipeline(transaction=False)
    for trip_id in range(1, events + 1):
        pipe.xadd(topic, _event(trip_id, drivers, stamp))  # type: ignore[arg-type]
        if trip_id % 5000 == 0:
            pipe.execute()
    pipe.execute()


def _produce_at(broker: str, topic: str, rate: float, seconds: float, drivers: int) -> int:
    """Write ``rate`` events/s for ``seconds``, each stamped with its produce time."""
    client = redis.Redis.from_url(broker)
    tick = 0.01
    per_tick = rate * tick
    started = time.monotonic()
    sent, owed, trip_id = 0, 0.0, 10_000_000
    while time.monotonic() - started < seconds:
        owed += per_tick
        pipe = client.pipeline(transaction=False)
        for _ in range(int(owed)):
            trip_id += 1
            pipe.xadd(topic, _event(trip_id, drivers, time.time()))  # type: ignore[arg-type]
            sent += 1
        owed -= int(owed)
        pipe.execute()
        wake = started + (sent / rate)
        time.sleep(max(0.0, min(tick, wake - time.monotonic())))
    elapsed = time.monotonic() - started
    print(f"producer: {sent:,} events in {elapsed:.1f} s ({sent / elapsed:,.0f}/s)")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--produce"]:
        broker, topic, rate, seconds, drivers = sys.argv[2:7]
        raise SystemExit(_produce_at(broker, topic, float(rate), float(seconds), int(drivers)))
    raise SystemExit(main(sys.argv[1:]))
