"""A materialization killed half-way, then re-run, ends exactly where an uninterrupted run does.

The child is a real Python process materializing with small batches; after a few batches it
writes a marker file and sleeps, and the test kills it with SIGKILL: no cleanup code runs, as in
a crash or an OOM kill. On the embedded SQLite store and on Redis (database 14).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from test_materialize import (
    BACKENDS,
    DRIVER,
    make_repo,
    online_backend,
    stats_view,
    watermark_of,
)

from featurestore import FeatureStore
from featurestore.errors import MaterializationError, OnlineStoreError
from featurestore.materialize import Materializer
from featurestore.online import Namespace, OnlineStore, WriteResult
from featurestore.online.base import EVENT_TS, FOUND

pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
KEYS = 200
BATCH_ROWS = 20  # 10 batches for 200 keys
PAUSE_AFTER = 3

# The child: materialize_incremental(END) with small batches; after PAUSE batches are durable it
# leaves a marker and sleeps until killed.
CHILD = """
import sys, time
from datetime import datetime
from pathlib import Path
from featurestore import FeatureStore
from featurestore.materialize import Materializer

repo, end, batch_rows, pause_after, marker = sys.argv[1:6]
store = FeatureStore(repo)
online = store.online
write = online.write_batch
written = 0

def write_then_maybe_pause(namespace, batch):
    global written
    result = write(namespace, batch)
    written += 1
    if written == int(pause_after):
        Path(marker).touch()
        time.sleep(300)
    return result

online.write_batch = write_then_maybe_pause
Materializer(project=store.project, registry=store.registry, offline=store.offline,
             online=online, batch_rows=int(batch_rows)).materialize_incremental(
    datetime.fromisoformat(end))
"""


def source_frame(seed: int, start: datetime, hours: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = KEYS * 4
    event = start + pd.to_timedelta(rng.integers(0, hours, n), unit="h")
    created = event + pd.to_timedelta(rng.integers(0, 20, n), unit="min")
    rate = rng.random(n)
    return pd.DataFrame(
        {
            "driver_id": np.tile(np.arange(KEYS), 4),
            "event_timestamp": event,
            "created": created,
            "rate": rate,
            "trips": pd.array(rng.integers(0, 50, n), dtype="Int64"),
            "label": [f"v{i}" for i in range(n)],
        }
    )


@pytest.fixture(params=BACKENDS)
def stores(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[FeatureStore, FeatureStore]]:
    """Two repos over the same data: one to crash and resume, one for an uninterrupted run."""
    backend = online_backend(request.param)
    suffix = uuid.uuid4().hex[:8]
    opened = [
        FeatureStore(make_repo(tmp_path / name, backend, f"{name}_{suffix}"))
        for name in ("crashed", "clean")
    ]
    try:
        yield opened[0], opened[1]
    finally:
        for store in opened:
            store.teardown()
            store.close()


def put_source(stores: tuple[FeatureStore, ...], frame: pd.DataFrame) -> None:
    for store in stores:
        frame.to_parquet(store.repo_path / "data" / "stats.parquet")


def state(store: FeatureStore) -> dict[int, tuple[Any, ...]]:
    """Every key of every version namespace of the view: ``{(version, key): row}``."""
    keys = pa.table({"driver_id": pa.array(range(KEYS), pa.int64())})
    found: dict[Any, tuple[Any, ...]] = {}
    current = store.registry.current_version(store.project, "feature_view", "driver_stats")
    for version in range(1, current + 1):
        view = store.get_feature_view("driver_stats", version)
        rows = store.online.read(
            Namespace(store.project, view, version), keys, ["rate", "trips", "label"]
        ).to_pylist()
        for key, row in enumerate(rows):
            if row[FOUND]:
                found[(version, key)] = (row[EVENT_TS], row["rate"], row["trips"], row["label"])
    return found


def run_child(store: FeatureStore, end: datetime, marker: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(store.repo_path),
            end.isoformat(),
            str(BATCH_ROWS),
            str(PAUSE_AFTER),
            str(marker),
        ],
        env=env,
        stderr=subprocess.PIPE,
    )


def kill_when_paused(child: subprocess.Popen[bytes], marker: Path) -> None:
    deadline = time.monotonic() + 120
    while not marker.exists():
        if child.poll() is not None:
            _, err = child.communicate()
            pytest.fail(f"the child ended before pausing: {err.decode()}")
        if time.monotonic() > deadline:
            child.kill()
            pytest.fail("the child never reached its pause")
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.communicate()
    assert child.returncode == -signal.SIGKILL


def test_a_killed_run_resumes_to_the_state_of_an_uninterrupted_one(stores, tmp_path):
    crashed, clean = stores
    first_end, second_end = T0 + 24 * H, T0 + 48 * H
    put_source(stores, source_frame(1, T0, 24))
    for store in stores:
        store.apply([DRIVER, stats_view()])
        store.materialize_incremental(first_end)
    before = watermark_of(crashed)
    assert before is not None
    assert before.end == first_end
    # New rows after the watermark, and late rows (old event time, created now) among them.
    late = source_frame(2, T0, 24)
    late["created"] = second_end
    put_source(stores, pd.concat([source_frame(1, T0, 24), source_frame(3, first_end, 24), late]))

    marker = tmp_path / "paused"
    kill_when_paused(run_child(crashed, second_end, marker), marker)
    assert watermark_of(crashed) == before
    partial = state(crashed)

    crashed.materialize_incremental(second_end)
    clean.materialize_incremental(second_end)
    final = state(crashed)
    assert final == state(clean)
    assert partial != final  # the kill did land half-way
    after = watermark_of(crashed)
    assert after is not None
    assert (after.end, after.created) == (second_end, second_end)


def test_a_first_run_killed_half_way_records_no_watermark(stores, tmp_path):
    crashed, clean = stores
    put_source(stores, source_frame(4, T0, 48))
    for store in stores:
        store.apply([DRIVER, stats_view()])
    marker = tmp_path / "paused"
    kill_when_paused(run_child(crashed, T0 + 48 * H, marker), marker)
    assert watermark_of(crashed) is None
    assert len(state(crashed)) == PAUSE_AFTER * BATCH_ROWS
    crashed.materialize_incremental(T0 + 48 * H)
    clean.materialize_incremental(T0 + 48 * H)
    assert state(crashed) == state(clean)
    assert len(state(clean)) == KEYS


class FailingAfter(OnlineStore):
    """Delegates to a real store, then fails like an unreachable Redis after ``batches``."""

    def __init__(self, inner: OnlineStore, batches: int) -> None:
        self.inner = inner
        self.left = batches

    @property
    def identity(self) -> str:
        return self.inner.identity

    def write_batch(self, namespace: Namespace, batch: pa.RecordBatch) -> WriteResult:
        if self.left == 0:
            raise OnlineStoreError("Redis at 127.0.0.1:6379 is unreachable: connection refused")
        self.left -= 1
        return self.inner.write_batch(namespace, batch)

    def read(self, namespace: Namespace, keys: pa.Table, features: Any) -> pa.Table:
        return self.inner.read(namespace, keys, features)

    def read_packed(self, reads: Any) -> list[list[bytes | None]]:
        return self.inner.read_packed(reads)

    def delete_project(self, project: str) -> int:
        return self.inner.delete_project(project)

    def ping(self) -> None:
        self.inner.ping()


def test_an_online_store_failure_mid_run_leaves_the_watermark(stores):
    crashed, clean = stores
    put_source(stores, source_frame(5, T0, 24))
    for store in stores:
        store.apply([DRIVER, stats_view()])
    crashed.materialize_incremental(T0 + 6 * H)
    before = watermark_of(crashed)
    failing = Materializer(
        project=crashed.project,
        registry=crashed.registry,
        offline=crashed.offline,
        online=FailingAfter(crashed.online, batches=2),
        batch_rows=BATCH_ROWS,
    )
    with pytest.raises(
        MaterializationError, match=r"driver_stats.*watermark did not move.*unreachable"
    ):
        failing.materialize_incremental(T0 + 24 * H)
    assert watermark_of(crashed) == before
    crashed.materialize_incremental(T0 + 24 * H)
    clean.materialize_incremental(T0 + 24 * H)
    assert state(crashed) == state(clean)
