"""A materialization of an aggregated view racing a stream consumer, on a real Redis stream and
real online stores (SQLite and Redis).

A consumer writes a batch online, then publishes its offline file. A materialization that lists
the view's files in between rebuilds the states from a read without that batch: it must keep
the batch's events (they are online, and the consumer acknowledges them), and must not count
them twice once their file is read. The interleaving cannot be timed for real, so the consumer's
publish step is wrapped to run the materialization first (or right after it).

Every check compares online lookups, at several instants and without any further
materialization, with a brute-force oracle over every event produced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aggregation_oracle import matches, window_rows
from conftest import require_redis
from stream_checks import late_instants, offline_trip_ids, produce, trip_moment
from stream_repo import STREAM_REDIS_URL, T0, aggregated_view, cleanup, client, event, make_repo

from featurestore import FeatureStore, FeatureView
from featurestore.offline.file_positions import newest_position, position_key, positions_in_files
from featurestore.offline.store_data import StoreData

VIEW = "trip_aggregates"


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


def _rows(trip_ids: range) -> list[dict[str, Any]]:
    """The events as the oracle reads them: driver 0's history trip (the batch file, first in
    file order), then the produced trips in stream order, parsed as the consumer parses them."""
    rows = [
        {"driver_id": 0, "ts": T0, "created": T0, "fare": 1.0, "trip_id": 0, "city": "origin",
         "__file": 0, "__pos": 0},
    ]  # fmt: skip
    for trip_id in trip_ids:
        fields = event(trip_id)
        moment = trip_moment(trip_id)
        rows.append(
            {
                "driver_id": int(fields["driver_id"]),
                "ts": moment,
                "created": moment,
                "fare": float(fields["fare"]),
                "trip_id": trip_id,
                "city": fields["city"] or None,
                "__file": 1,
                "__pos": trip_id,
            }
        )
    return rows


def assert_online_equals_oracle(
    store: FeatureStore, rows: list[dict[str, Any]], instants: list[datetime]
) -> None:
    """Every aggregation of every driver, online at each instant, equals the brute force."""
    aggregations = aggregated_view("unused").aggregations
    drivers = list(range(50))
    features = [f"{VIEW}:{agg.name}" for agg in aggregations]
    for instant in instants:
        online = store.get_online_features(
            features, entity_rows=[{"driver_id": d} for d in drivers], as_of=instant
        ).to_dict()
        for agg in aggregations:
            window = None if agg.window_us is None else timedelta(microseconds=agg.window_us)
            for driver, got in zip(drivers, online[agg.name], strict=True):
                chosen = window_rows(rows, {"driver_id": driver}, instant, window)
                assert matches(agg, got, chosen, rank_error=0, distinct_error=0), (
                    agg.name,
                    driver,
                    instant,
                    got,
                )


def _materialize(store: FeatureStore) -> None:
    """A materialization of the view up to a day after every produced event."""
    store.materialize(T0 - timedelta(days=1), T0 + timedelta(days=1), [VIEW])


def _around_publish(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch, batch: int, run: Callable[[], None]
) -> list[list[int]]:
    """Make the consumer's ``batch``-th offline file (from 1) call ``run`` just before it is
    published, once the batch is online; returns the trips offline at that moment."""
    stage = store.pusher.data.stage
    seen: list[list[int]] = []

    def stage_and_hook(*args: Any, **kwargs: Any) -> Any:
        staged = stage(*args, **kwargs)
        seen.append([])
        if len(seen) == batch:
            publish = staged.commit

            def run_then_publish() -> Path:
                seen[-1] = offline_trip_ids(store)
                run()
                return publish()

            staged.commit = run_then_publish  # type: ignore[method-assign]
        return staged

    monkeypatch.setattr(store.pusher.data, "stage", stage_and_hook)
    return seen


def _consume(store: FeatureStore, batch_size: int = 400) -> None:
    consumer = store.stream_consumer(batch_size=batch_size, block_ms=50)
    try:
        consumer.run(idle_seconds=1.0)
    finally:
        consumer.close()


def test_a_materialization_between_the_online_write_and_the_offline_file_drops_nothing(
    repo: tuple[FeatureStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: the second batch is online, not yet offline, when two materializations run
    to completion; the consumer then publishes and acknowledges. Online must still count the
    second batch, once."""
    store, topic = repo
    produce(topic, range(1, 1001))

    def materialize_twice() -> None:
        _materialize(store)
        _materialize(store)

    seen = _around_publish(store, monkeypatch, 2, materialize_twice)
    _consume(store)
    assert sorted(seen[1]) == list(range(1, 401))  # only the first batch was offline
    assert sorted(offline_trip_ids(store)) == list(range(1, 1001))
    instants = [trip_moment(600), *late_instants(1000)]
    assert_online_equals_oracle(store, _rows(range(1, 1001)), instants)


def test_a_materialization_after_the_offline_file_counts_nothing_twice(
    repo: tuple[FeatureStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's file is published before the materialization lists the files: its events
    are in the read and in the old state (with their positions): counted once."""
    store, topic = repo
    produce(topic, range(1, 1001))
    stage = store.pusher.data.stage

    def stage_publish_then_materialize(*args: Any, **kwargs: Any) -> Any:
        staged = stage(*args, **kwargs)
        publish = staged.commit

        def publish_then_materialize() -> Path:
            path = publish()
            _materialize(store)
            _materialize(store)
            return path

        staged.commit = publish_then_materialize  # type: ignore[method-assign]
        return staged

    monkeypatch.setattr(store.pusher.data, "stage", stage_publish_then_materialize)
    _consume(store)
    instants = [trip_moment(600), *late_instants(1000)]
    assert_online_equals_oracle(store, _rows(range(1, 1001)), instants)


def test_a_replay_after_a_crash_and_a_materialization_in_between_counts_once(
    repo: tuple[FeatureStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer dies after writing its second batch online, before its offline file; a
    materialization runs while the batch is online only; the restarted consumer replays the
    batch (online: skipped by position; offline: published now) and goes on. Then one more
    materialization, with every file read."""
    store, topic = repo
    produce(topic, range(1, 1001))

    def die() -> None:
        raise SystemExit("killed before publishing the offline file")

    _around_publish(store, monkeypatch, 2, die)
    with pytest.raises(SystemExit):
        _consume(store)
    monkeypatch.undo()
    assert sorted(offline_trip_ids(store)) == list(range(1, 401))
    _materialize(store)
    rows = _rows(range(1, 1001))
    assert_online_equals_oracle(store, rows[:801], [trip_moment(800)])  # history + 800 trips
    _consume(store)
    assert sorted(offline_trip_ids(store)) == list(range(1, 1001))
    instants = [trip_moment(600), *late_instants(1000)]
    assert_online_equals_oracle(store, rows, instants)
    _materialize(store)
    assert_online_equals_oracle(store, rows, instants)


def test_compaction_keeps_the_positions_a_materialization_reads(
    repo: tuple[FeatureStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compacted files keep the largest position of the files they merge, so a
    materialization after compaction still knows the compacted events are in its read (and a
    batch online but not yet offline still is not)."""
    store, topic = repo
    produce(topic, range(1, 1001))
    _consume(store, batch_size=200)
    data = StoreData(store.config)
    before = positions_in_files(data.readable_pushed_files("trip_events"))
    report = store.compact(["trip_events"])
    files = data.readable_pushed_files("trip_events")
    assert len(files) < 5, report  # the five batch files were merged
    assert positions_in_files(files) == before
    view = store.registry.get(store.project, "feature_view", VIEW)
    assert isinstance(view, FeatureView)
    connection = client()
    [(last, _)] = connection.xrevrange(topic, count=1)
    connection.close()
    durable = data.durable_positions(view, data.view_files(view))
    assert newest_position(durable, topic) == position_key(last)
    produce(topic, range(1001, 1401))
    _around_publish(store, monkeypatch, 1, lambda: _materialize(store))
    _consume(store, batch_size=200)
    instants = [trip_moment(1000), *late_instants(1400)]
    assert_online_equals_oracle(store, _rows(range(1, 1401)), instants)
