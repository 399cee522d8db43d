"""Stream ingestion from real Redis Streams: parsing, dead letters, exactly-once storage across
crashes (kill -9 of a real consumer process), the one-consumer lock, access control.

After every run, online lookups must equal offline retrieval at the same instant for every key,
the offline store must hold every good event exactly once, and the aggregated view must count
every event exactly once (its count equals a brute-force count of what was produced).
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from access_repo import COMMAND, ROOT
from conftest import require_redis
from stream_checks import (
    assert_aggregates_equal_offline,
    assert_online_equals_offline,
    late_instants,
    offline_trip_ids,
    produce,
    trip_moment,
    trips,
)
from stream_repo import (
    DRIVER,
    STREAM_REDIS_URL,
    T0,
    cleanup,
    client,
    event,
    make_repo,
    stream_view,
    trip_events,
)

from featurestore import FeatureStore, Policy
from featurestore.errors import AccessDeniedError, ConfigError, ObjectNotFoundError
from featurestore.governance.access import Principal
from featurestore.stream.parse import Message, MessageParser


@pytest.fixture(params=["sqlite", "redis"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[FeatureStore, str]]:
    require_redis(STREAM_REDIS_URL)
    store, topic = make_repo(tmp_path, online=request.param, aggregated=True)
    try:
        yield store, topic
    finally:
        store.teardown()
        store.close()
        cleanup(topic)


def test_stream_source_versions_on_what_is_read_not_where() -> None:
    view = stream_view("trips")
    moved = stream_view("trips", broker="redis://other-host:6379/0")
    renamed = stream_view("trips-v2")
    assert view.content_hash == moved.content_hash  # deployment, not definition
    assert view.content_hash != renamed.content_hash
    rebuilt = type(view).from_dict(view.to_dict())
    assert rebuilt.source == view.source
    assert rebuilt.source.broker == view.source.broker  # type: ignore[union-attr]
    assert rebuilt.content_hash == view.content_hash


def test_parsing_types_timestamps_and_bad_messages(repo: tuple[FeatureStore, str]) -> None:
    store, _ = repo
    parser = MessageParser(store.pusher.target("trip_events").columns)
    good = event(3)
    batch = parser.parse(
        [
            Message("1-0", good),
            Message("2-0", {**good, "event_timestamp": "2026-03-01T00:00:05Z"}),
            Message("3-0", {**good, "event_timestamp": ""}),
            Message("4-0", {**good, "fare": "cheap"}),
            Message("5-0", {k: v for k, v in good.items() if k != "driver_id"}),
            Message("6-0", {**good, "fare": ""}),
        ]
    )
    assert batch.positions == ["1-0", "2-0", "6-0"]
    assert [d.message.position for d in batch.dead] == ["3-0", "4-0", "5-0"]
    reasons = [d.reason for d in batch.dead]
    assert "missing timestamp field 'event_timestamp'" in reasons[0]
    assert "'fare'" in reasons[1]
    assert "'cheap'" in reasons[1]
    assert "missing join key field 'driver_id'" in reasons[2]
    rows = batch.table.to_pylist()
    assert rows[1]["event_timestamp"] == T0 + pd.Timedelta(seconds=5)
    assert rows[2]["fare"] is None


def test_consumer_stores_every_event_once_and_dead_letters_the_bad(
    repo: tuple[FeatureStore, str],
) -> None:
    store, topic = repo
    produce(topic, range(1, 3001))
    connection = client()
    for trip_id in range(3001, 3011):  # full ties (same event and created time): stream order wins
        connection.xadd(topic, {**event(3001), "trip_id": str(trip_id), "fare": str(trip_id)})
    connection.xadd(topic, {**event(5000), "fare": "not-a-number"})
    connection.xadd(topic, {**event(5001), "event_timestamp": ""})
    consumer = store.stream_consumer(batch_size=601, block_ms=50)  # a batch ends mid-ties
    try:
        report = consumer.run(idle_seconds=1.0)
    finally:
        consumer.close()
    assert report.events == 3010
    assert report.dead_letters == 2
    assert sorted(offline_trip_ids(store)) == list(range(1, 3011))
    dead = connection.xrange(f"{topic}.dead")
    assert [fields["trip_id"] for _, fields in dead] == ["5000", "5001"]
    assert "not a double" in dead[0][1]["_reason"] or "fare" in dead[0][1]["_reason"]
    assert connection.xpending(topic, f"featurestore.{store.project}")["pending"] == 0
    connection.close()
    assert_online_equals_offline(store, range(50))
    ties = [(1, trip_moment(3001))] * 10
    assert_aggregates_equal_offline(store, trips(range(1, 3001)) + ties, late_instants(3001))


def test_a_crash_between_offline_and_acknowledgement_stores_nothing_twice(
    repo: tuple[FeatureStore, str],
) -> None:
    store, topic = repo
    produce(topic, range(1, 1001))
    consumer = store.stream_consumer(batch_size=400, block_ms=50)
    broker = consumer.states[0].broker

    def crash(_positions: Any) -> None:
        raise SystemExit("killed before acknowledging")

    broker.acknowledge = crash  # type: ignore[method-assign]  # the fault: a death at this point
    with pytest.raises(SystemExit):
        consumer.run(idle_seconds=1.0)
    consumer.close()
    assert len(offline_trip_ids(store)) == 400  # stored, never acknowledged
    again = store.stream_consumer(batch_size=400, block_ms=50)
    try:
        again.run(idle_seconds=1.0)
    finally:
        again.close()
    assert sorted(offline_trip_ids(store)) == list(range(1, 1001))
    assert_online_equals_offline(store, range(50))
    assert_aggregates_equal_offline(store, trips(range(1, 1001)), late_instants(1000))


def test_a_crash_between_the_online_write_and_the_offline_file_counts_nothing_twice(
    repo: tuple[FeatureStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch reaches the online store (plain rows and aggregation states), then the
    consumer dies before its offline file is published: the restarted consumer writes the
    batch both ways again, and the aggregation states skip what they already counted."""
    store, topic = repo
    produce(topic, range(1, 1001))
    stage = store.pusher.data.stage

    def stage_then_die(*args: Any, **kwargs: Any) -> Any:
        staged = stage(*args, **kwargs)

        def die() -> None:
            raise SystemExit("killed before publishing the offline file")

        staged.commit = die  # type: ignore[method-assign]  # the fault: a death at this point
        return staged

    monkeypatch.setattr(store.pusher.data, "stage", stage_then_die)
    consumer = store.stream_consumer(batch_size=400, block_ms=50)
    with pytest.raises(SystemExit):
        consumer.run(idle_seconds=1.0)
    consumer.close()
    monkeypatch.undo()
    assert offline_trip_ids(store) == []
    counted = store.get_online_features(
        ["trip_aggregates:trips"], entity_rows=[{"driver_id": d} for d in range(50)]
    ).to_dict()["trips"]
    assert sum(counted) == 400 + 1  # the first batch is online (and driver 0's history trip)
    again = store.stream_consumer(batch_size=400, block_ms=50)
    try:
        again.run(idle_seconds=1.0)
    finally:
        again.close()
    assert sorted(offline_trip_ids(store)) == list(range(1, 1001))
    assert_online_equals_offline(store, range(50))
    assert_aggregates_equal_offline(store, trips(range(1, 1001)), late_instants(1000))


def test_kill_9_twice_while_producing_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path,
) -> None:
    """Plain and aggregated views: after two kill -9 of a real consumer, every event is stored
    once offline, counted once online, and online equals offline at several instants."""
    require_redis(STREAM_REDIS_URL)
    store, topic = make_repo(tmp_path, online="sqlite", aggregated=True)
    rng = random.Random(5)
    total = 100_000
    try:
        producer = threading.Thread(target=produce, args=(topic, range(1, total + 1)))
        producer.start()
        command = [COMMAND, "--repo", str(tmp_path), "stream", "--batch-size", "2000"]
        for _ in range(2):
            process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(rng.uniform(3.0, 6.0))
            process.send_signal(signal.SIGKILL)
            process.wait()
        producer.join()
        finished = subprocess.run(
            [*command, "--idle-exit", "3"], capture_output=True, text=True, timeout=300
        )
        assert finished.returncode == 0, finished.stdout + finished.stderr
        trip_ids = offline_trip_ids(store)
        assert len(trip_ids) == total
        assert sorted(trip_ids) == list(range(1, total + 1))
        assert_online_equals_offline(store, range(50))
        assert_aggregates_equal_offline(store, trips(range(1, total + 1)), late_instants(total))
    finally:
        store.teardown()
        store.close()
        cleanup(topic)


def test_one_consumer_per_source(repo: tuple[FeatureStore, str]) -> None:
    store, _topic = repo
    first = store.stream_consumer()
    try:
        with (
            FeatureStore(store.repo_path) as other,
            pytest.raises(ConfigError, match="being consumed by"),
        ):
            other.stream_consumer()
    finally:
        first.close()
    second = store.stream_consumer()  # free again once the first is closed
    second.close()


def test_stream_needs_write_rights_and_names_unknown_views(tmp_path: Path) -> None:
    require_redis(STREAM_REDIS_URL)
    store, topic = make_repo(tmp_path)
    store.close()
    try:
        with FeatureStore(tmp_path, principal=ROOT) as admin:
            with pytest.raises(ObjectNotFoundError, match=r"trip_stat'.*did you mean"):
                admin.stream_consumer(["trip_stat"])
            admin.apply(
                [
                    DRIVER,
                    stream_view(topic),
                    Policy(name="admins", roles=["admin"], actions=["admin"]),
                    Policy(
                        name="readers", principals=["reader"], actions=["describe", "read_online"]
                    ),
                ]
            )
        reader = Principal("reader", frozenset())
        with FeatureStore(tmp_path, principal=reader) as denied, pytest.raises(AccessDeniedError):
            denied.stream_consumer()
        with FeatureStore(tmp_path, principal=ROOT) as admin:
            records = [(r.principal, r.action, r.outcome) for r in admin.audit_log(limit=20)]
            assert ("reader", "write_online", "denied") in records
            admin.teardown()
    finally:
        cleanup(topic)


def test_a_consumer_whose_lock_was_taken_over_stops_and_leaves_it(
    repo: tuple[FeatureStore, str],
) -> None:
    """After an outage longer than the lock's expiry another consumer may hold the lock: the
    first one must stop at its next renewal (not take the lock back), and its close must not
    delete the other's lock."""
    import redis

    from featurestore.stream.redis_streams import RedisStreamBroker

    _store, topic = repo
    source = trip_events(topic)
    broker = RedisStreamBroker(source, group="lock-test", consumer="one")
    client = redis.Redis.from_url(source.broker, decode_responses=True)
    key = f"featurestore:stream-lock:lock-test:{topic}"
    try:
        client.set(key, "elsewhere:4242", ex=60)  # taken over while this one was cut off
        broker._renewed = 0.0  # due for renewal
        with pytest.raises(ConfigError, match="now consumed by elsewhere:4242"):
            broker.read(10, 10)
        broker.close()
        assert client.get(key) == "elsewhere:4242"
    finally:
        client.delete(key)
        client.close()


def test_erasure_deletes_the_entitys_dead_letters_and_keeps_the_others(
    repo: tuple[FeatureStore, str],
) -> None:
    """Dead letters keep a message's fields (keys and values): erasing a driver deletes the
    ones naming it, by text ('7') or by value ('007'), and no other."""
    store, topic = repo
    produce(topic, range(1, 201))
    connection = client()
    bad = [
        {**event(7), "fare": "not-a-number"},
        {**event(57), "driver_id": "007", "fare": "x"},  # the same driver, written otherwise
        {**event(8), "fare": "y"},
        {"fare": "1.0"},  # no key at all: nobody's
    ]
    for fields in bad:
        connection.xadd(topic, fields)
    consumer = store.stream_consumer(batch_size=100, block_ms=50)
    try:
        assert consumer.run(idle_seconds=1.0).dead_letters == 4
    finally:
        consumer.close()
    dead = f"{topic}.dead"

    def drivers() -> list[str | None]:
        return sorted((f.get("driver_id") or "-") for _, f in connection.xrange(dead))

    assert drivers() == ["-", "007", "7", "8"]
    preview = store.erase(entity={"driver_id": 7}, dry_run=True)
    assert [(r.place, r.rows) for r in preview.removed if r.place == "dead_letters"] == [
        ("dead_letters", 2)
    ]
    assert drivers() == ["-", "007", "7", "8"]
    report = store.erase(entity={"driver_id": 7})
    assert report.verified
    assert [(r.place, r.name, r.rows) for r in report.removed if r.place == "dead_letters"] == [
        ("dead_letters", dead, 2)
    ]
    assert drivers() == ["-", "8"]
    connection.close()
