"""``materialize --watch`` on a Spark table: a new version of the table is materialized.

A real local Spark session, a Parquet table at a location under ``tmp_path``, the watcher in a
thread and the real online store: rows INSERTed with Spark SQL (and a file another writer adds)
reach the online store in one run per burst, checked against a brute-force latest row per key;
nothing runs while nothing changes; a table that is not on a local folder is refused clearly.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from spark_session import PY4J_WARNINGS, spark  # noqa: F401 - the module's session fixture

from featurestore import Entity, FeatureStore, FeatureView, Field, SparkSource
from featurestore.errors import DefinitionError, EngineCapabilityError, SourceSchemaError
from featurestore.materialize import MaterializationReport
from featurestore.materialize.watch import watch_and_materialize, watched_views
from featurestore.materialize.watch_tables import new_versions
from featurestore.offline.backends import open_offline_engine
from featurestore.offline.store_data import StoreData
from featurestore.types import Float64, Int64

pytestmark = PY4J_WARNINGS

DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
DEBOUNCE = 0.5
#: (driver_id, event time, created time, rate)
Row = tuple[int, datetime, datetime, float]


def rates_view(table: str) -> FeatureView:
    return FeatureView(
        name="rates",
        entities=[DRIVER],
        ttl=None,
        schema=[Field(name="rate", dtype=Float64)],
        source=SparkSource(name="rates_src", table=table, created_timestamp_column="created"),
    )


def insert(spark: Any, table: str, rows: list[Row], into: str = "INTO") -> None:  # noqa: F811
    """``INSERT <into> <table> VALUES <rows>`` (``into``: e.g. ``OVERWRITE TABLE`` or
    ``INTO`` with a ``PARTITION (...)`` spec after the table)."""
    values = ", ".join(
        f"({d}, TIMESTAMP '{e.isoformat()}', TIMESTAMP '{c.isoformat()}', {r!r})"
        for d, e, c, r in rows
    )
    spark.sql(f"INSERT {into} {table} VALUES {values}")


def random_rows(rng: random.Random, count: int, after: datetime, before: datetime) -> list[Row]:
    """Rows of drivers 1-4 with distinct event times in ``(after, before)``, created now; one
    of them late (its event time an hour back, so only its created time makes it new)."""
    span = int((before - after).total_seconds() * 1_000_000) - 2
    offsets = rng.sample(range(1, span), count)
    now = datetime.now(UTC)
    rows = [
        (rng.randint(1, 4), after + timedelta(microseconds=o), now, rng.random()) for o in offsets
    ]
    late = rows[0]
    rows[0] = (late[0], after - timedelta(hours=1), now, late[3])
    return rows


def latest_per_key(rows: list[Row]) -> dict[int, float]:
    """Brute force: per driver, the rate of its row with the greatest (event, created) time."""
    best: dict[int, Row] = {}
    for row in rows:
        if row[0] not in best or row[1:3] > best[row[0]][1:3]:
            best[row[0]] = row
    return {driver: row[3] for driver, row in best.items()}


def online_rates(store: FeatureStore) -> dict[int, float]:
    found = store.get_online_features(["rates:rate"], [{"driver_id": d} for d in range(1, 5)])
    rates = found.to_dict()["rate"]
    return {d: r for d, r in zip(range(1, 5), rates, strict=True) if r is not None}


class Watcher:
    """``watch_and_materialize`` in a thread, recording each run's views."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self.runs: list[list[str]] = []
        self.stop = threading.Event()
        ready = threading.Event()
        data = StoreData(store.config)
        views = [store.registry.get(store.project, "feature_view", "rates")]
        watched = watched_views(views, data, store.offline)  # type: ignore[list-item]
        self.thread = threading.Thread(
            target=watch_and_materialize,
            args=(watched, data, self._materialize, self._on_run),
            kwargs={"debounce": DEBOUNCE, "stop": self.stop, "ready": ready.set},
            daemon=True,
        )
        self.thread.start()
        assert ready.wait(30)
        time.sleep(1.0)  # the watcher starts listening right after ready()

    def _materialize(self, names: list[str]) -> MaterializationReport:
        return self.store.materialize_incremental(datetime.now(UTC), names, progress=False)

    def _on_run(self, hits: dict[str, list[str]], _report: MaterializationReport) -> None:
        self.runs.append(sorted(hits))

    def wait_runs(self, count: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.runs) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.runs) >= count, self.runs
        time.sleep(DEBOUNCE * 4)  # anything else from the same burst would run by now
        assert len(self.runs) == count, self.runs

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.fixture
def table_store(
    spark: Any,  # noqa: F811
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[FeatureStore, str, Path]]:
    """A Parquet table at a location under ``tmp_path`` (partitioned by a ``day`` column when
    the test is parametrized with ``True``) and a store whose view ``rates`` reads it."""
    table = f"watch_rates_{uuid.uuid4().hex[:8]}"
    location = tmp_path / "lake" / table
    partitioned = getattr(request, "param", False)
    spark.sql(
        f"CREATE TABLE {table} (driver_id BIGINT, event_timestamp TIMESTAMP, "
        f"created TIMESTAMP, rate DOUBLE{', day STRING' if partitioned else ''}) USING parquet "
        f"{'PARTITIONED BY (day) ' if partitioned else ''}LOCATION '{location}'"
    )
    (tmp_path / "featurestore.yaml").write_text(
        f"project: watch_{uuid.uuid4().hex[:8]}\n"
        f"registry: sqlite:///{tmp_path / 'registry.db'}\n"
        "offline_store: {type: spark, master: 'local[2]'}\n"
        f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}}}\n"
    )
    store = FeatureStore(tmp_path)
    try:
        store.apply([DRIVER, rates_view(table)])
        yield store, table, location
    finally:
        store.teardown()
        store.close()
        spark.sql(f"DROP TABLE IF EXISTS {table}")


def test_new_table_versions_are_materialized_once_per_burst(
    spark: Any,  # noqa: F811
    table_store: tuple[FeatureStore, str, Path],
) -> None:
    store, table, location = table_store
    rng = random.Random(15)
    start = datetime.now(UTC)
    rows = random_rows(rng, 6, start - timedelta(hours=3), start - timedelta(hours=2))
    insert(spark, table, rows)
    store.materialize_incremental(datetime.now(UTC), progress=False)  # the watcher's catch-up
    assert online_rates(store) == latest_per_key(rows)
    watcher = Watcher(store)
    try:
        time.sleep(DEBOUNCE * 4)
        assert watcher.runs == []  # nothing changed: nothing runs, nothing is re-read

        # An INSERT: Spark stages under _temporary, moves its files in, writes _SUCCESS.
        new = random_rows(rng, 8, start, datetime.now(UTC))
        insert(spark, table, new)
        watcher.wait_runs(1)
        rows += new
        assert online_rates(store) == latest_per_key(rows)

        # Another writer's file (staged under a dot-name, then renamed): Spark's cached listing
        # of the table is refreshed, so the run sees it.
        more = random_rows(rng, 5, start, datetime.now(UTC))
        frame = pa.table(
            {
                "driver_id": pa.array([r[0] for r in more], pa.int64()),
                "event_timestamp": pa.array([r[1] for r in more], pa.timestamp("us", "UTC")),
                "created": pa.array([r[2] for r in more], pa.timestamp("us", "UTC")),
                "rate": pa.array([r[3] for r in more], pa.float64()),
            }
        )
        pq.write_table(frame, location / ".part-other.parquet.tmp")
        os.replace(location / ".part-other.parquet.tmp", location / "part-other.parquet")
        watcher.wait_runs(2)
        rows += more
        assert online_rates(store) == latest_per_key(rows)

        # Spark's bookkeeping alone is no new version.
        (location / "_SUCCESS").write_text("")
        (location / ".part-other.parquet.crc").write_bytes(b"crc")
        time.sleep(DEBOUNCE * 4)
        assert watcher.runs == [["rates"], ["rates"]]
    finally:
        watcher.close()


@pytest.mark.parametrize("table_store", [True], indirect=True)
def test_new_partitions_and_overwrites_are_new_versions(
    spark: Any,  # noqa: F811
    table_store: tuple[FeatureStore, str, Path],
) -> None:
    store, table, location = table_store
    rng = random.Random(16)
    start = datetime.now(UTC)
    rows = random_rows(rng, 4, start - timedelta(hours=3), start - timedelta(hours=2))
    insert(spark, f"{table} PARTITION (day='d0')", rows)
    store.materialize_incremental(datetime.now(UTC), progress=False)
    assert online_rates(store) == latest_per_key(rows)
    watcher = Watcher(store)
    try:
        # A new partition: the job commit moves the whole day=d1 folder in (no file event).
        new = random_rows(rng, 5, start, datetime.now(UTC))
        insert(spark, f"{table} PARTITION (day='d1')", new)
        watcher.wait_runs(1)
        rows += new
        assert online_rates(store) == latest_per_key(rows)
        assert (location / "day=d1").is_dir()

        # An overwrite of a partition: its old files go, new ones come. Online values stay the
        # newest ever seen per key (a key whose stored row is newer keeps it).
        new = random_rows(rng, 5, start, datetime.now(UTC))
        insert(spark, f"{table} PARTITION (day='d0')", new, "OVERWRITE TABLE")
        watcher.wait_runs(2)
        rows += new
        assert online_rates(store) == latest_per_key(rows)
    finally:
        watcher.close()


def test_a_table_not_on_a_local_folder_is_refused(spark: Any, tmp_path: Path) -> None:  # noqa: F811
    # viewfs: a Hadoop file system (mounted here onto tmp_path) that inotify cannot watch.
    mount = f"ws{uuid.uuid4().hex[:8]}"
    spark.sparkContext._jsc.hadoopConfiguration().set(
        f"fs.viewfs.mounttable.{mount}.link./lake", f"file://{tmp_path}/lake"
    )
    table = f"remote_rates_{uuid.uuid4().hex[:8]}"
    spark.sql(
        f"CREATE TABLE {table} (driver_id BIGINT) USING parquet LOCATION 'viewfs://{mount}/lake/t'"
    )
    try:
        (tmp_path / "featurestore.yaml").write_text(
            "project: remote\nregistry: sqlite://\noffline_store: {type: spark}\n"
        )
        with FeatureStore(tmp_path) as store:
            data = StoreData(store.config)
            message = rf"rates.*{table}.*viewfs://{mount}/lake/t.*local or mounted"
            with pytest.raises(DefinitionError, match=message):
                watched_views([rates_view(table)], data, store.offline)
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {table}")


def test_a_temporary_view_has_no_location_to_watch(spark: Any, tmp_path: Path) -> None:  # noqa: F811
    name = f"rates_view_{uuid.uuid4().hex[:8]}"
    spark.range(3).withColumnRenamed("id", "driver_id").createOrReplaceTempView(name)
    try:
        (tmp_path / "featurestore.yaml").write_text(
            "project: temp\nregistry: sqlite://\noffline_store: {type: spark}\n"
        )
        with FeatureStore(tmp_path) as store:
            data = StoreData(store.config)
            with pytest.raises(SourceSchemaError, match=rf"{name}.*no storage location"):
                watched_views([rates_view(name)], data, store.offline)
    finally:
        spark.catalog.dropTempView(name)


def test_an_engine_that_cannot_locate_tables_is_named(tmp_path: Path) -> None:
    (tmp_path / "featurestore.yaml").write_text("project: p\nregistry: sqlite://\n")
    with FeatureStore(tmp_path) as store:
        duckdb = open_offline_engine(store.config)
        with pytest.raises(EngineCapabilityError, match=r"'duckdb' cannot tell where .*rates"):
            watched_views([rates_view("lake.rates")], StoreData(store.config), duckdb)
        duckdb.close()


@pytest.mark.parametrize(
    ("layout", "changed", "counts"),
    [
        ([], "part-0.parquet", True),
        ([], "date=2026-01-01", True),  # a partition folder moved in by the job commit
        ([], "date=2026-01-01/part-0.parquet", True),
        ([], "_SUCCESS", False),
        ([], "_temporary/0/part-0.parquet", False),
        ([], ".spark-staging-1/part-0.parquet", False),
        ([], ".part-0.parquet.crc", False),
        (["_delta_log/00000.json"], "_delta_log/00001.json", True),
        (["_delta_log/00000.json"], "part-1.parquet", False),  # not committed yet
        (["_delta_log/00000.json"], "_delta_log/00001.checkpoint.parquet", False),
        (["metadata/v1.metadata.json"], "metadata/v2.metadata.json", True),
        (["metadata/v1.metadata.json"], "data/part-1.parquet", False),
        (["metadata/v1.metadata.json"], "metadata/snap-1.avro", False),
    ],
)
def test_what_counts_as_a_new_version(
    tmp_path: Path, layout: list[str], changed: str, counts: bool
) -> None:
    for name in layout:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    elsewhere = tmp_path.parent / "elsewhere.parquet"
    found = new_versions([tmp_path / changed, elsewhere, tmp_path], tmp_path)
    assert found == ([tmp_path / changed] if counts else [])


def test_the_watcher_does_not_import_pyspark() -> None:
    code = (
        "import sys, featurestore.cli.watch, featurestore.materialize.watch_tables\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'pyspark'], 'pyspark'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
