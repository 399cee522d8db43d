"""``featurestore materialize --watch``: a real process, real files, the real online store.

New files in a view's source folder are materialized within a second or two; staged (dot) files
and unrelated files trigger nothing; nothing runs while nothing changes.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from access_repo import COMMAND

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource
from featurestore.errors import ObjectNotFoundError
from featurestore.materialize.watch import online_views
from featurestore.types import Float64, Int64

DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
VIEW = FeatureView(
    name="driver_stats",
    entities=[DRIVER],
    ttl=timedelta(days=1),
    schema=[Field(name="rate", dtype=Float64)],
    source=FileSource(path="data/stats/"),
)


def write(folder: Path, name: str, driver: int, rate: float, age: timedelta) -> None:
    """One row ``age`` before now (a row after the watcher's catch-up has age 0: incremental runs
    take rows after the watermark, or created after it)."""
    pd.DataFrame(
        {
            "driver_id": pd.Series([driver], dtype="int64"),
            "event_timestamp": [datetime.now(UTC) - age],
            "rate": [rate],
        }
    ).to_parquet(folder / name)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "stats"
    folder.mkdir(parents=True)
    write(folder, "part-0.parquet", 1, 0.1, timedelta(hours=2))
    (tmp_path / "featurestore.yaml").write_text(
        f"project: watch_{uuid.uuid4().hex[:8]}\n"
        f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}}}\n"
    )
    with FeatureStore(tmp_path) as store:
        store.apply([DRIVER, VIEW])
    return tmp_path


@pytest.fixture
def watcher(repo: Path) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str]]]:
    process = subprocess.Popen(
        [COMMAND, "--repo", str(repo), "materialize", "--watch", "--debounce", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    )  # type: ignore[union-attr]
    reader.start()
    try:
        wait_for(lines, "watching")
        yield process, lines
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        reader.join(timeout=5)
        process.stdout.close()


def wait_for(lines: queue.Queue[str], text: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no line with {text!r} in {seen}")


def online_rate(repo: Path, driver: int) -> float | None:
    with FeatureStore(repo) as store:
        value = store.get_online_features(
            ["driver_stats:rate"], entity_rows=[{"driver_id": driver}]
        )
        return value.to_dict()["rate"][0]  # type: ignore[no-any-return]


def test_caught_up_first_then_new_files_are_materialized_as_they_land(
    repo: Path, watcher: tuple[subprocess.Popen[str], queue.Queue[str]]
) -> None:
    _, lines = watcher
    assert online_rate(repo, 1) == pytest.approx(0.1)  # the catch-up run at start
    write(repo / "data" / "stats", "part-1.parquet", 2, 0.7, timedelta(0))
    wait_for(lines, "new data in 1 file(s) for driver_stats")
    assert online_rate(repo, 2) == pytest.approx(0.7)
    write(repo / "data" / "stats", "part-2.parquet", 1, 0.9, timedelta(0))
    wait_for(lines, "new data in 1 file(s) for driver_stats")
    assert online_rate(repo, 1) == pytest.approx(0.9)


def test_staged_and_unrelated_files_trigger_nothing(
    repo: Path, watcher: tuple[subprocess.Popen[str], queue.Queue[str]]
) -> None:
    process, lines = watcher
    write(repo / "data" / "stats", ".part-9.parquet.tmp", 3, 0.5, timedelta(minutes=1))
    (repo / "data" / "stats" / "notes.txt").write_text("not data")
    (repo / "elsewhere.parquet").write_bytes(b"")
    time.sleep(2.0)
    assert lines.empty(), list(lines.queue)
    assert process.poll() is None
    assert online_rate(repo, 3) is None


def test_unknown_view_is_named(repo: Path) -> None:
    with FeatureStore(repo) as store:
        registered = store.registry.list(store.project, "feature_view")
    with pytest.raises(ObjectNotFoundError, match=r"'driver_stat'.*did you mean"):
        online_views(registered, ["driver_stat"])
    result = subprocess.run(
        [COMMAND, "--repo", str(repo), "materialize", "now-1d", "now", "--watch"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "--watch runs from each view's watermark to now" in result.stderr
