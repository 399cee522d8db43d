"""Concurrent applies from separate processes lose nothing, on SQLite and on PostgreSQL.

Each worker is a real process (multiprocessing "spawn"), with its own registry connection, and
they all start together. Every apply changes the view's TTL to a value no other apply uses, so
every apply must land as its own version.
"""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from featurestore.definitions import Entity, FeatureView, Field, FileSource
from featurestore.registry import open_registry
from featurestore.registry.migrations import MIGRATIONS
from featurestore.types import Float32, Int64

PROJECT = "demo"
WORKERS = 4
ROUNDS = 6
START_TIMEOUT_SECONDS = 120


def _driver() -> Entity:
    return Entity(name="driver", join_keys=["driver_id"], value_type=Int64)


def _view(ttl: timedelta) -> FeatureView:
    return FeatureView(
        name="driver_stats",
        entities=[_driver()],
        ttl=ttl,
        schema=[Field(name="conv_rate", dtype=Float32)],
        source=FileSource(path="data/driver_stats.parquet"),
    )


def _ttl(worker: int, round_no: int) -> timedelta:
    return timedelta(seconds=10_000 + 100 * worker + round_no)


def _hammer(url: str, worker: int, barrier: Any) -> None:
    """Run in a child process: apply ROUNDS different TTLs as fast as possible."""
    registry = open_registry(url)
    try:
        barrier.wait(START_TIMEOUT_SECONDS)
        for round_no in range(ROUNDS):
            plan = registry.apply(
                PROJECT, [_driver(), _view(_ttl(worker, round_no))], delete_missing=False
            )
            if [c.change for c in plan.changes] != ["unchanged", "changed"]:
                raise AssertionError(
                    f"worker {worker} round {round_no}: unexpected plan {plan.changes}"
                )
    finally:
        registry.close()


def _open_and_add(url: str, worker: int, barrier: Any) -> None:
    """Run in a child process: open a registry nobody has created yet and add one entity."""
    barrier.wait(START_TIMEOUT_SECONDS)
    with open_registry(url) as registry:
        entity = Entity(name=f"entity_{worker}", join_keys=["id"], value_type=Int64)
        registry.apply(PROJECT, [entity], delete_missing=False)


def _run_together(target: Any, url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    processes = [context.Process(target=target, args=(url, w, barrier)) for w in range(WORKERS)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join(timeout=300)
        exit_codes = [process.exitcode for process in processes]
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
            process.close()
    assert exit_codes == [0] * WORKERS, "a worker failed; its traceback is in the captured stderr"


class ConcurrencyContract:
    """Concurrent writers on one backend; subclasses give the ``url`` fixture."""

    __test__ = False

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    def test_concurrent_applies_each_land_as_their_own_version(self, url):
        with open_registry(url) as registry:
            registry.apply(PROJECT, [_driver(), _view(timedelta(hours=1))], delete_missing=True)

        _run_together(_hammer, url)

        total = 1 + WORKERS * ROUNDS
        with open_registry(url) as registry:
            history = registry.history(PROJECT, "driver_stats", kind="feature_view")
            assert [e.version for e in history] == list(range(1, total + 1))
            assert [e.change for e in history] == ["added"] + ["changed"] * (WORKERS * ROUNDS)
            ttls = [
                registry.get(PROJECT, "feature_view", "driver_stats", v).ttl
                for v in range(1, total + 1)
            ]
        assert [e.applied_at for e in history] == sorted(e.applied_at for e in history)
        applied = {_ttl(w, r) for w in range(WORKERS) for r in range(ROUNDS)}
        assert set(ttls[1:]) == applied
        # Each plan was computed against the version just before it: nothing was planned stale.
        for entry, before, after in zip(history[1:], ttls[:-1], ttls[1:], strict=True):
            assert entry.details == [f"ttl: {before} -> {after}"]
        # Each worker's own applies landed in the order it made them.
        for worker in range(WORKERS):
            mine = [t for t in ttls if t in {_ttl(worker, r) for r in range(ROUNDS)}]
            assert mine == [_ttl(worker, r) for r in range(ROUNDS)]

    def test_processes_opening_a_new_registry_together_all_succeed(self, url):
        _run_together(_open_and_add, url)
        with open_registry(url) as registry:
            names = [e.name for e in registry.list(PROJECT, "entity")]
        assert names == [f"entity_{w}" for w in range(WORKERS)]
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                versions = conn.execute(sa.text("SELECT version FROM schema_version ORDER BY 1"))
                assert list(versions.scalars()) == [m.version for m in MIGRATIONS]
        finally:
            engine.dispose()


class TestSQLiteConcurrency(ConcurrencyContract):
    """Writers share one SQLite file (WAL, BEGIN IMMEDIATE, busy timeout)."""

    __test__ = True

    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresConcurrency(ConcurrencyContract):
    """Writers share one PostgreSQL schema (row lock per project, advisory lock to migrate)."""

    __test__ = True

    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url
