"""The stream consumer when its online store goes away: a real consumer process
(``featurestore stream``) writes to a Redis server of its own, which the test first freezes
(SIGSTOP: it keeps its connections but answers nothing) and thaws, then kills -9 and starts
again, while a producer keeps writing trips to the stream.

During each outage the consumer holds its batch and reads nothing more (bounded memory), keeps
its lock on the source, and retries with backoff; it logs one line when the outage starts and
one when it ends. At the end every produced trip is stored once offline, counted once by the
aggregated view (against a brute-force count), and online equals offline for every key.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from access_repo import COMMAND
from conftest import require_redis, start_redis_process
from stream_checks import (
    assert_aggregates_equal_offline,
    assert_online_equals_offline,
    late_instants,
    offline_trip_ids,
    trips,
)
from stream_repo import STREAM_REDIS_URL, cleanup, client, event, make_repo

from featurestore.stream.redis_streams import LOCK_SECONDS

BATCH = 500
OUTAGE = "': outage: "
RECOVERED = "': recovered after "


class Producer(threading.Thread):
    """Trips 1, 2, ... into ``topic`` at a steady pace (about 1,000/s) until halted."""

    def __init__(self, topic: str) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.produced = 0
        self.halt = threading.Event()

    def run(self) -> None:
        connection = client()
        try:
            while not self.halt.is_set():
                pipe = connection.pipeline(transaction=False)
                for trip_id in range(self.produced + 1, self.produced + 26):
                    pipe.xadd(self.topic, event(trip_id))
                pipe.execute()
                self.produced += 25
                self.halt.wait(0.025)
        finally:
            connection.close()


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def test_online_store_outages_hold_the_batch_and_lose_nothing(tmp_path: Path) -> None:
    require_redis(STREAM_REDIS_URL)
    server = start_redis_process(tmp_path / "online-redis")
    repo = tmp_path / "repo"
    online = f"{{type: redis, url: '{server.url}', expiry_grace: 3650d, timeout: 0.5}}"
    store, topic = make_repo(repo, online=online, aggregated=True)
    group = f"featurestore.{store.project}"
    lock_key = f"featurestore:stream-lock:{group}:{topic}"
    log_path = tmp_path / "consumer.log"
    connection = client()
    producer = Producer(topic)
    process: subprocess.Popen[bytes] | None = None

    def lines(marker: str) -> list[str]:
        return [line for line in log_path.read_text().splitlines() if marker in line]

    def group_info() -> dict[str, Any]:
        info: dict[str, Any] = next(g for g in connection.xinfo_groups(topic) if g["name"] == group)
        return info

    def holds_one_batch(seconds: float) -> None:
        """Nothing more is read while the batch waits, and at most one batch is held."""
        delivered = group_info()["last-delivered-id"]
        time.sleep(seconds)
        assert group_info()["last-delivered-id"] == delivered
        assert 0 < group_info()["pending"] <= BATCH

    try:
        producer.start()
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [COMMAND, "--repo", str(repo), "stream", "--batch-size", str(BATCH),
                 "--idle-exit", "3"],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for("a first stored batch", lambda: bool(offline_trip_ids(store)))

        # 1. the online store stops answering, then answers again
        server.pause()
        wait_for("the first outage's line", lambda: len(lines(OUTAGE)) == 1)
        holds_one_batch(2.0)
        server.resume()
        wait_for("the first recovery's line", lambda: len(lines(RECOVERED)) == 1)

        # 2. it dies, and comes back with its data after longer than the consumer's lock lasts
        server.kill()
        wait_for("the second outage's line", lambda: len(lines(OUTAGE)) == 2)
        holds_one_batch(LOCK_SECONDS + 1.0)
        assert connection.get(lock_key) is not None  # kept alive through the outage
        server.start()
        wait_for("the second recovery's line", lambda: len(lines(RECOVERED)) == 2)

        producer.halt.set()
        producer.join()
        assert process.wait(timeout=300) == 0, log_path.read_text()
        outages = lines(OUTAGE)
        assert len(outages) == 2, log_path.read_text()
        assert len(lines(RECOVERED)) == 2, log_path.read_text()
        for line in outages:
            assert "stream source 'trip_events'" in line
            assert f"127.0.0.1:{server.port}" in line  # names the store that is down
        produced = producer.produced
        assert sorted(offline_trip_ids(store)) == list(range(1, produced + 1))
        assert_online_equals_offline(store, range(50))
        assert_aggregates_equal_offline(
            store, trips(range(1, produced + 1)), late_instants(produced)
        )
    finally:
        producer.halt.set()
        if producer.is_alive():
            producer.join()
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        connection.close()
        store.close()
        cleanup(topic)
        server.stop()


def test_stopping_during_an_outage_leaves_the_batch_for_the_next_run(tmp_path: Path) -> None:
    """SIGTERM (the stop event) ends the retries; the held batch, never acknowledged, is
    stored by the next run once the store is back."""
    require_redis(STREAM_REDIS_URL)
    server = start_redis_process(tmp_path / "online-redis")
    repo = tmp_path / "repo"
    online = f"{{type: redis, url: '{server.url}', expiry_grace: 3650d, timeout: 0.5}}"
    store, topic = make_repo(repo, online=online, aggregated=True)
    connection = client()
    try:
        pipe = connection.pipeline(transaction=False)
        for trip_id in range(1, 301):
            pipe.xadd(topic, event(trip_id))
        pipe.execute()
        server.kill()
        consumer = store.stream_consumer(batch_size=BATCH, block_ms=50)
        stop = threading.Event()
        running = threading.Thread(target=consumer.run, args=(stop,))
        running.start()
        wait_for("the outage", lambda: consumer.outages.ongoing)
        stop.set()
        running.join(timeout=15)
        assert not running.is_alive()
        consumer.close()
        assert consumer.report.events == 0
        assert connection.xpending(topic, f"featurestore.{store.project}")["pending"] == 300
        server.start()
        again = store.stream_consumer(batch_size=BATCH, block_ms=50)
        try:
            again.run(idle_seconds=1.0)
        finally:
            again.close()
        assert sorted(offline_trip_ids(store)) == list(range(1, 301))
        assert_online_equals_offline(store, range(50))
        assert_aggregates_equal_offline(store, trips(range(1, 301)), late_instants(300))
    finally:
        connection.close()
        store.close()
        cleanup(topic)
        server.stop()
