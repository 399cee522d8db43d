"""Compaction of pushed offline files: the same answers, every row exactly once, under load.

Real pushes through the facade, real DuckDB retrievals, the brute-force point-in-time oracle
(including full ties across pushes, which compaction must keep in file order), readers and
writers running while compaction runs, erasure and access control.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from access_repo import COMMAND, as_, make_repo
from pit_oracle import OracleRequest, expected_frame

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from featurestore.errors import AccessDeniedError, ObjectNotFoundError
from featurestore.offline.compaction import COVERS_KEY, covers
from featurestore.offline.store_data import StoreData
from featurestore.types import Float64, Int64, String

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
BATCH = FileSource(path="data/stats.parquet", created_timestamp_column="created")
PUSH = PushSource(name="stats_push", batch_source=BATCH)
VIEW = FeatureView(
    name="driver_stats",
    entities=[DRIVER],
    ttl=timedelta(hours=3),
    schema=[
        Field(name="rate", dtype=Float64),
        Field(name="trips", dtype=Int64),
        Field(name="label", dtype=String),
    ],
    source=PUSH,
)
FEATURES = ["driver_stats:rate", "driver_stats:trips", "driver_stats:label"]
COLUMNS = ["driver_id", "event_timestamp", "created", "rate", "trips", "label"]


def batch_rows() -> list[dict[str, Any]]:
    return [
        {
            "driver_id": 1,
            "event_timestamp": T0,
            "created": T0,
            "rate": 0.5,
            "trips": 0,
            "label": "batch",
        }
    ]


@pytest.fixture
def store(tmp_path: Path) -> Any:
    (tmp_path / "data").mkdir()
    pd.DataFrame(batch_rows()).to_parquet(tmp_path / "data" / "stats.parquet")
    (tmp_path / "featurestore.yaml").write_text(
        f"project: compact_{uuid.uuid4().hex[:8]}\n"
        f"registry: sqlite:///{tmp_path / 'registry.db'}\n"
        f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}}}\n"
    )
    fs = FeatureStore(tmp_path)
    fs.apply([DRIVER, VIEW])
    try:
        yield fs
    finally:
        fs.close()


def random_push(rng: random.Random, serial: int) -> list[dict[str, Any]]:
    """1 to 4 rows with few distinct keys and instants, so that ties (full ties included:
    same event and created time in different pushes) are common."""
    rows = []
    for _ in range(rng.randint(1, 4)):
        event = T0 + timedelta(minutes=30 * rng.randint(0, 8))
        rows.append(
            {
                "driver_id": rng.randint(1, 5),
                "event_timestamp": event,
                "created": event + timedelta(minutes=rng.choice([0, 0, 5])),
                "rate": rng.choice([None, round(rng.random(), 3)]),
                "trips": serial,
                "label": rng.choice(["a", "b", None]),
            }
        )
    return rows


def push(store: FeatureStore, rows: list[dict[str, Any]]) -> None:
    store.push("stats_push", {c: [r[c] for r in rows] for c in COLUMNS}, to="offline")


def entity_frame(rng: random.Random, n: int = 120) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": [rng.randint(1, 6) for _ in range(n)],
            "event_timestamp": [T0 + timedelta(minutes=15 * rng.randint(0, 20)) for _ in range(n)],
        }
    )


def retrieve(store: FeatureStore, entities: pd.DataFrame) -> pd.DataFrame:
    return store.get_historical_features(entities, FEATURES).to_pandas()


def oracle(entities: pd.DataFrame, source_rows: list[dict[str, Any]]) -> pd.DataFrame:
    request = OracleRequest(
        view=VIEW,
        source_rows=source_rows,
        outputs={"rate": "rate", "trips": "trips", "label": "label"},
    )
    rows = entities.to_dict("records")
    return pd.DataFrame(expected_frame(rows, "event_timestamp", [request]))


def assert_matches(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want)
    for column in ("rate", "trips", "label"):
        left = [None if pd.isna(v) else v for v in got[column]]
        right = [None if pd.isna(v) else v for v in want[column]]
        assert left == right, column


def folder(store: FeatureStore) -> Path:
    return StoreData(store.config).push_folder("stats_push")


def test_compaction_keeps_every_answer_of_the_oracle(store: FeatureStore) -> None:
    rng = random.Random(7)
    source = batch_rows()
    for serial in range(1, 41):
        rows = random_push(rng, serial)
        push(store, rows)
        source += rows
    entities = entity_frame(rng)
    before = retrieve(store, entities)
    assert_matches(before, oracle(entities, source))

    report = store.compact()
    (done,) = report.sources
    assert (done.files_before, done.merged, len(done.written)) == (40, 40, 1)
    assert done.files_after == 1
    assert done.rows == sum(1 for _ in source) - 1
    after = retrieve(store, entities)
    pd.testing.assert_frame_equal(after, before)

    # More pushes, then a second generation that merges the first compacted file again.
    for serial in range(41, 61):
        rows = random_push(rng, serial)
        push(store, rows)
        source += rows
    first = report.sources[0].written[0]
    again = store.compact(grace_seconds=0)
    (second,) = again.sources[0].written
    assert second > first
    assert first in covers(folder(store) / second)
    assert again.sources[0].deleted == 61  # the 60 pushed files and the first compacted one
    assert_matches(retrieve(store, entities), oracle(entities, source))
    assert [p.name for p in folder(store).glob("part-*.parquet")] == again.sources[0].written


def test_a_push_still_being_staged_bounds_what_is_compacted(store: FeatureStore) -> None:
    rng = random.Random(11)
    source = batch_rows()
    for serial in range(1, 4):
        rows = random_push(rng, serial)
        push(store, rows)
        source += rows
    # A push staged now (its name is fixed) but published only after later pushes.
    late_rows = random_push(rng, 100)
    frame = pa.Table.from_pylist(
        [{**r, "created": r["created"]} for r in late_rows],
    )
    staged = StoreData(store.config).stage("stats_push", frame)
    later = []
    for serial in range(4, 8):
        rows = random_push(rng, serial)
        push(store, rows)
        later += rows
    done = store.compact().sources[0]
    assert done.merged == 3  # only the pushes older than the staged one
    staged.commit()
    # File order is push-name order: the late push sits between the first three and the rest.
    entities = entity_frame(rng)
    assert_matches(retrieve(store, entities), oracle(entities, source + late_rows + later))
    done = store.compact().sources[0]
    assert done.merged == 6
    assert done.files_after == 1


def test_readers_see_every_row_exactly_once_while_compaction_runs(store: FeatureStore) -> None:
    data = StoreData(store.config)
    pushed: list[int] = []
    stop = threading.Event()
    problems: list[str] = []

    def writer() -> None:
        for serial in range(1, 121):
            event = T0 + timedelta(minutes=serial)
            push(store, [{**batch_rows()[0], "event_timestamp": event, "trips": serial}])
            pushed.append(serial)
        stop.set()

    def reader() -> None:
        while not stop.is_set():
            known = list(pushed)
            files = data.readable_pushed_files("stats_push")
            seen = [v for f in files for v in pq.read_table(f, columns=["trips"])[0].to_pylist()]
            if len(seen) != len(set(seen)):
                problems.append(f"a row read twice from {len(files)} files")
            if missing := set(known) - set(seen):
                problems.append(f"rows missing: {sorted(missing)[:5]}")

    def compactor() -> None:
        with FeatureStore(store.repo_path) as other:
            while not stop.is_set():
                other.compact()

    threads = [threading.Thread(target=f) for f in (writer, reader, reader, compactor)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not problems, problems[:3]
    store.compact()
    (compacted,) = data.readable_pushed_files("stats_push")
    assert pq.read_table(compacted, columns=["trips"])[0].to_pylist() == list(range(1, 121))


def test_covered_files_stay_for_readers_that_listed_them(store: FeatureStore) -> None:
    for serial in range(1, 6):
        push(store, [{**batch_rows()[0], "trips": serial}])
    data = StoreData(store.config)
    listed = data.readable_pushed_files("stats_push")
    done = store.compact().sources[0]
    assert done.deleted == 0
    assert all(Path(p).exists() for p in listed)  # a reader that listed them still finds them
    (compacted,) = data.readable_pushed_files("stats_push")
    assert sorted(covers(compacted)) == sorted(Path(p).name for p in listed)
    assert len(data.pushed_files("stats_push")) == 6  # erasure and retention see them all
    assert store.compact(grace_seconds=0).sources[0].deleted == 5
    assert data.pushed_files("stats_push") == [compacted]


def test_erasure_after_compaction_leaves_nothing(store: FeatureStore) -> None:
    for serial in range(1, 7):
        push(store, [{**batch_rows()[0], "driver_id": 1 + serial % 2, "trips": serial}])
    store.compact()  # covered files kept: erasure must clean them too
    report = store.erase({"driver_id": 2})
    assert report.verified
    data = StoreData(store.config)
    for path in data.pushed_files("stats_push"):
        assert 2 not in pq.read_table(path, columns=["driver_id"]).column(0).to_pylist()
    (compacted,) = data.readable_pushed_files("stats_push")
    assert json.loads(pq.read_schema(compacted).metadata[COVERS_KEY])  # metadata survived
    frame = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [T0 + timedelta(hours=1)] * 2})
    got = retrieve(store, frame)
    assert got["trips"].tolist()[0] == 6
    assert pd.isna(got["trips"].tolist()[1])


def test_unknown_source_is_named(store: FeatureStore) -> None:
    with pytest.raises(ObjectNotFoundError, match=r"push source 'stats_pus'.*did you mean"):
        store.compact(["stats_pus"])


def test_nothing_to_compact_is_a_no_op(store: FeatureStore) -> None:
    assert store.compact().sources == []
    push(store, batch_rows())
    done = store.compact().sources[0]
    assert (done.files_before, done.merged, done.files_after) == (1, 0, 1)


def test_compaction_needs_write_offline_and_is_audited(tmp_path: Path) -> None:
    repo, tokens = make_repo(tmp_path)
    rows = {
        "driver_id": [1],
        "event_timestamp": [datetime.now(UTC)],
        "conv_rate": [0.1],
        "ssn": ["x"],
        "trips": [1],
    }
    with as_(repo, tokens["ingestor"]) as ingestor:
        ingestor.push("driver_push", rows, to="offline")
        ingestor.push("driver_push", rows, to="offline")
    with as_(repo, tokens["analyst"]) as analyst, pytest.raises(AccessDeniedError):
        analyst.compact()
    with as_(repo, tokens["ingestor"]) as ingestor:
        assert ingestor.compact().merged == 2
    with as_(repo, tokens["admin"]) as admin:
        records = [(r.principal, r.action, r.outcome) for r in admin.audit_log(limit=50)]
    assert ("bob", "write_offline", "denied") in records
    assert ("ingestor", "compact", "ok") in records


def test_cli_compact(tmp_path: Path, store: FeatureStore) -> None:
    for serial in range(1, 4):
        push(store, [{**batch_rows()[0], "trips": serial}])
    result = subprocess.run(
        [COMMAND, "--repo", str(store.repo_path), "compact"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (
        "stats_push: 3 files -> 1 (3 merged into 1, 3 rows, 0 old files deleted)" in result.stdout
    )
    failed = subprocess.run(
        [COMMAND, "--repo", str(store.repo_path), "compact", "--source", "nope"],
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0
    assert "push source 'nope'" in failed.stderr
