"""Materialization end to end: real DuckDB, the real online stores, the registry's watermarks.

Every test runs on the embedded SQLite online store and on Redis (127.0.0.1:6379, database 14,
a project of its own per test). The watermark contract runs on SQLite and PostgreSQL registries.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import require_redis

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource
from featurestore.errors import MaterializationError, ObjectNotFoundError, OnlineStoreError
from featurestore.online.base import EVENT_TS, FOUND, Namespace
from featurestore.registry import Registry, open_registry
from featurestore.registry.base import Watermark
from featurestore.types import Float32, Int64, String

T0 = datetime(2026, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
#: Online store identities, as OnlineStore.identity gives them.
STORE = "sqlite:/tmp/online.db"
OTHER_STORE = "redis://127.0.0.1:6379/0 prefix fs:"
REDIS_URL = os.environ.get("FEATURESTORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)


def stats_view(
    name: str = "driver_stats", *, ttl: timedelta | None = 2 * H, online: bool = True
) -> FeatureView:
    return FeatureView(
        name=name,
        entities=[DRIVER],
        ttl=ttl,
        online=online,
        schema=[
            Field(name="rate", dtype=Float32),
            Field(name="trips", dtype=Int64),
            Field(name="label", dtype=String),
        ],
        source=FileSource(path="data/stats.parquet", created_timestamp_column="created"),
    )


def rows(*items: tuple[int, datetime, datetime, float | None, int | None]) -> pd.DataFrame:
    """Source rows ``(driver_id, event_ts, created, rate, trips)``; label is derived from rate."""
    frame = pd.DataFrame(
        items, columns=["driver_id", "event_timestamp", "created", "rate", "trips"]
    )
    frame["trips"] = frame["trips"].astype("Int64")
    frame["label"] = [None if r is None or pd.isna(r) else f"r{r}" for r in frame["rate"]]
    return frame


def online_config(backend: str, tmp_path: Path) -> str:
    # Rows expire ttl + expiry_grace after their event time by the wall clock; the fixed dates
    # of these tests must not expire while they run.
    if backend == "sqlite":
        return (
            f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}, expiry_grace: 3650d}}\n"
        )
    return f"online_store: {{type: redis, url: '{REDIS_URL}', expiry_grace: 3650d}}\n"


def make_repo(path: Path, backend: str, project: str, registry: str | None = None) -> Path:
    (path / "data").mkdir(parents=True, exist_ok=True)
    registry_url = registry or f"sqlite:///{path / 'data' / 'registry.db'}"
    (path / "featurestore.yaml").write_text(
        f"project: {project}\nregistry: {registry_url}\n" + online_config(backend, path)
    )
    return path


BACKENDS = ["sqlite", "redis"]


def online_backend(name: str) -> str:
    """``name``, once its server is known to answer."""
    if name == "redis":
        require_redis(REDIS_URL)
    return name


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return online_backend(request.param)


@pytest.fixture
def store(tmp_path: Path, backend: str) -> Iterator[FeatureStore]:
    project = f"mat_{uuid.uuid4().hex[:10]}"
    fs = FeatureStore(make_repo(tmp_path, backend, project))
    try:
        yield fs
    finally:
        fs.teardown()
        fs.close()


def write_source(store: FeatureStore, frame: pd.DataFrame) -> None:
    frame.to_parquet(store.repo_path / "data" / "stats.parquet")


def online_state(store: FeatureStore, view_name: str, keys: list[int]) -> dict[int, Any]:
    """``{driver_id: (event_ts, rate, trips, label)}`` for every stored key among ``keys``."""
    view = store.get_feature_view(view_name)
    version = store.registry.current_version(store.project, "feature_view", view_name)
    table = pa.table({"driver_id": pa.array(keys, pa.int64())})
    read = store.online.read(
        Namespace(store.project, view, version), table, ["rate", "trips", "label"]
    ).to_pylist()
    return {
        key: (row[EVENT_TS], row["rate"], row["trips"], row["label"])
        for key, row in zip(keys, read, strict=True)
        if row[FOUND]
    }


def watermark_of(store: FeatureStore, version: int = 1) -> Watermark | None:
    """The watermark of ``driver_stats`` (at ``version``) for the store's online store."""
    return store.registry.get_watermark(
        store.project, "driver_stats", version, online_store=store.online.identity
    )


def micros(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


# -- windowed runs -----------------------------------------------------------------------------


def test_materialize_writes_the_latest_row_per_key_in_the_window(store):
    write_source(
        store,
        rows(
            (1, T0, T0, 0.1, 1),
            (1, T0 + H, T0 + H, 0.2, 2),
            (1, T0 + 5 * H, T0 + 5 * H, 0.9, 9),  # after the window
            (2, T0 - 3 * H, T0 - 3 * H, 0.3, 3),  # before the window
            (3, T0 + 0.5 * H, T0 + 0.5 * H, 0.5, None),
        ),
    )
    store.apply([DRIVER, stats_view(), stats_view("driver_offline", online=False)])
    report = store.materialize(T0 - H, T0 + 2 * H)
    assert [v.view for v in report.views] == ["driver_stats"]  # online=False is skipped
    view = report.view("driver_stats")
    assert (view.rows_read, view.keys, view.written, view.skipped_older) == (3, 2, 2, 0)
    assert online_state(store, "driver_stats", [1, 2, 3]) == {
        1: (micros(T0 + H), pytest.approx(0.2), 2, "r0.2"),
        3: (micros(T0 + 0.5 * H), pytest.approx(0.5), None, "r0.5"),
    }
    assert "driver_stats v1: 3 rows read, 2 keys written, 0 skipped" in report.summary()
    assert "total (1 views)" in report.summary()


def test_online_values_equal_a_historical_retrieval_at_end(store):
    rng = np.random.default_rng(7)
    n = 600
    event = T0 + pd.to_timedelta(rng.integers(0, 48, n), unit="h")
    # Coarse created times make many equal-event-time corrections and full ties.
    created = event + pd.to_timedelta(rng.integers(0, 3, n) * 10, unit="min")
    frame = pd.DataFrame(
        {
            "driver_id": rng.integers(0, 80, n),
            "event_timestamp": event,
            "created": created,
            "rate": pd.array(np.where(rng.random(n) < 0.1, np.nan, rng.random(n)), dtype="Float64"),
            "trips": pd.array(rng.integers(0, 100, n), dtype="Int64"),
        }
    )
    frame.loc[rng.random(n) < 0.1, "trips"] = pd.NA
    frame["label"] = [f"l{i}" if i % 7 else None for i in range(n)]
    write_source(store, frame)
    store.apply([DRIVER, stats_view(ttl=None)])
    end = T0 + 30 * H
    store.materialize(T0 - H, end)
    keys = list(range(85))
    expected = (
        store.get_historical_features(
            pd.DataFrame({"driver_id": keys, "event_timestamp": [end] * len(keys)}),
            ["driver_stats:rate", "driver_stats:trips", "driver_stats:label"],
        )
        .to_arrow()
        .to_pylist()
    )
    state = online_state(store, "driver_stats", keys)
    before_end = frame[frame["event_timestamp"] <= end]
    assert set(state) == set(before_end["driver_id"])
    for key, row in zip(keys, expected, strict=True):
        if key in state:
            _, rate, trips, label = state[key]
            assert (rate, trips, label) == (row["rate"], row["trips"], row["label"]), key


def test_naive_datetimes_are_utc_and_bad_arguments_name_the_problem(store):
    write_source(store, rows((1, T0, T0, 0.1, 1)))
    store.apply([DRIVER, stats_view(), stats_view("driver_offline", online=False)])
    report = store.materialize(T0.replace(tzinfo=None) - H, T0.replace(tzinfo=None))
    assert report.view("driver_stats").written == 1
    watermark = watermark_of(store)
    assert watermark is not None
    assert watermark.end == T0
    with pytest.raises(MaterializationError, match=r"start .* is after end"):
        store.materialize(T0, T0 - H)
    with pytest.raises(ObjectNotFoundError, match=r"cannot materialize .*'no_such_view'"):
        store.materialize(T0 - H, T0, feature_views=["no_such_view"])
    with pytest.raises(MaterializationError, match=r"driver_offline.*online=False"):
        store.materialize(T0 - H, T0, feature_views=["driver_offline"])


# -- corrections and idempotence ---------------------------------------------------------------


def test_a_correction_lands_and_an_older_backfill_does_not_overwrite(store):
    original = rows((1, T0, T0, 0.1, 1))
    write_source(store, original)
    store.apply([DRIVER, stats_view()])
    store.materialize(T0 - H, T0 + H)
    # Same event time, created later: a correction, which must replace the stored row.
    corrected = pd.concat([original, rows((1, T0, T0 + 0.1 * H, 0.2, 2))])
    write_source(store, corrected)
    report = store.materialize(T0 - H, T0 + H)
    assert (report.total.written, report.total.skipped_older) == (1, 0)
    assert online_state(store, "driver_stats", [1])[1][1:] == (pytest.approx(0.2), 2, "r0.2")
    # A backfill of an older event, even if created last, never replaces the newer stored row.
    write_source(store, pd.concat([corrected, rows((1, T0 - H, T0 + H, 0.3, 3))]))
    report = store.materialize(T0 - 2 * H, T0 - 0.5 * H)
    assert (report.total.rows_read, report.total.written, report.total.skipped_older) == (1, 0, 1)
    assert online_state(store, "driver_stats", [1])[1] == (
        micros(T0),
        pytest.approx(0.2),
        2,
        "r0.2",
    )


def test_re_running_changes_nothing_and_writes_nothing_new(store):
    write_source(store, rows(*[(k, T0 + k * H / 10, T0, 0.1 * k, k) for k in range(20)]))
    store.apply([DRIVER, stats_view()])
    first = store.materialize(T0 - H, T0 + 3 * H)
    state = online_state(store, "driver_stats", list(range(20)))
    second = store.materialize(T0 - H, T0 + 3 * H)
    # "Nothing new": every row the second run sends is identical (same key, event and created
    # time, values) to the stored one. A store may keep its row (skipped) or rewrite the same
    # bytes (the SQLite store lets an equal-time, equal-created row replace): either way no
    # stored value changes, which is what is asserted.
    assert (first.total.written, first.total.skipped_older) == (20, 0)
    assert second.total.keys == second.total.written + second.total.skipped_older == 20
    assert online_state(store, "driver_stats", list(range(20))) == state
    again = store.materialize_incremental(T0 + 3 * H)
    assert (again.total.rows_read, again.total.written) == (0, 0)
    assert online_state(store, "driver_stats", list(range(20))) == state


def test_a_new_view_version_gets_its_own_namespace_and_watermark(store):
    write_source(store, rows((1, T0, T0, 0.1, 1)))
    store.apply([DRIVER, stats_view()])
    store.materialize_incremental(T0 + H)
    store.apply([DRIVER, stats_view(ttl=3 * H)])
    report = store.materialize_incremental(T0 + H)
    assert (report.view("driver_stats").version, report.total.written) == (2, 1)
    marks = store.registry.list_watermarks(store.project, online_store=store.online.identity)
    assert set(marks) == {("driver_stats", 1), ("driver_stats", 2)}


# -- incremental runs and watermarks -----------------------------------------------------------


def test_incremental_runs_pick_up_late_rows_and_move_the_watermark(store):
    base = rows((1, T0, T0, 0.1, 1), (2, T0 + H, T0 + H, 0.2, 2))
    write_source(store, base)
    store.apply([DRIVER, stats_view()])
    first = store.materialize_incremental(T0 + 2 * H)
    assert (first.total.rows_read, first.total.written) == (2, 2)
    mark = watermark_of(store)
    assert mark is not None
    assert (mark.end, mark.created, mark.rows) == (T0 + 2 * H, T0 + H, 2)
    late = rows(
        (1, T0 - H, T0 + 3 * H, 0.5, 5),  # late and older than the stored row: skipped
        (2, T0 + 1.5 * H, T0 + 3 * H, 0.6, 6),  # late and newer than the stored row: lands
        (3, T0 + 3 * H, T0 + 3 * H, 0.7, 7),  # new
        (4, T0 + 5 * H, T0 + 5 * H, 0.8, 8),  # after this run's end
    )
    write_source(store, pd.concat([base, late]))
    second = store.materialize_incremental(T0 + 4 * H)
    assert (second.total.rows_read, second.total.written, second.total.skipped_older) == (3, 2, 1)
    assert online_state(store, "driver_stats", [1, 2, 3, 4]) == {
        1: (micros(T0), pytest.approx(0.1), 1, "r0.1"),
        2: (micros(T0 + 1.5 * H), pytest.approx(0.6), 6, "r0.6"),
        3: (micros(T0 + 3 * H), pytest.approx(0.7), 7, "r0.7"),
    }
    mark = watermark_of(store)
    assert mark is not None
    assert (mark.end, mark.created) == (T0 + 4 * H, T0 + 3 * H)
    # An end before the watermark re-checks late rows up to it, but never moves it back.
    store.materialize_incremental(T0 + H)
    assert watermark_of(store) == mark


def test_windowed_runs_move_the_watermark_only_without_a_gap(store):
    write_source(store, rows((1, T0, T0, 0.1, 1), (1, T0 + 3 * H, T0 + 3 * H, 0.2, 2)))
    store.apply([DRIVER, stats_view()])
    store.materialize(T0 - H, T0 + H)
    mark = watermark_of(store)
    assert mark is not None
    assert (mark.end, mark.created) == (T0 + H, T0)
    store.materialize(T0 + 2 * H, T0 + 4 * H)  # leaves (T0+1h, T0+2h) unmaterialized: a gap
    assert watermark_of(store) == mark
    store.materialize(T0, T0 + 4 * H)
    moved = watermark_of(store)
    assert moved is not None
    assert (moved.end, moved.created) == (T0 + 4 * H, T0)


def test_a_failing_online_store_leaves_the_watermark(store, monkeypatch):
    write_source(store, rows((1, T0, T0, 0.1, 1)))
    store.apply([DRIVER, stats_view()])
    store.materialize_incremental(T0 + H)
    before = watermark_of(store)
    write_source(store, rows((1, T0, T0, 0.1, 1), (2, T0 + 2 * H, T0 + 2 * H, 0.2, 2)))

    def unreachable(namespace: Namespace, batch: pa.RecordBatch) -> Any:
        raise OnlineStoreError("connection refused")

    monkeypatch.setattr(store.online, "write_batch", unreachable)
    with pytest.raises(MaterializationError, match=r"driver_stats.*watermark did not move"):
        store.materialize_incremental(T0 + 3 * H)
    assert watermark_of(store) == before


# -- the registry's watermark table ------------------------------------------------------------


class WatermarkContract:
    """Watermarks on every registry backend; subclasses provide ``url``."""

    __test__ = False

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def registry(self, url: str) -> Iterator[Registry]:
        reg = open_registry(url)
        yield reg
        reg.close()

    def test_no_watermark_before_the_first_run(self, registry):
        assert registry.get_watermark("demo", "driver_stats", 1, online_store=STORE) is None
        assert registry.list_watermarks("demo", online_store=STORE) == {}

    def test_set_replaces_and_round_trips_exactly(self, registry):
        end = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
        first = registry.set_watermark(
            "demo", "driver_stats", 1, online_store=STORE, end=end, created=None, rows=5
        )
        assert (first.end, first.created, first.rows) == (end, None, 5)
        assert first.updated_at.utcoffset() == timedelta(0)
        later = end + H
        registry.set_watermark(
            "demo", "driver_stats", 1, online_store=STORE, end=later, created=end, rows=7
        )
        got = registry.get_watermark("demo", "driver_stats", 1, online_store=STORE)
        assert got is not None
        assert (got.end, got.created, got.rows) == (later, end, 7)

    def test_watermarks_are_per_project_online_store_view_and_version(self, registry):
        def mark(project: str, version: int, end: datetime, store: str = STORE) -> None:
            registry.set_watermark(
                project, "driver_stats", version, online_store=store, end=end, created=None, rows=1
            )

        mark("demo", 1, T0)
        mark("demo", 2, T0 + H)
        mark("other", 1, T0 + 2 * H)
        mark("demo", 1, T0 + 3 * H, store=OTHER_STORE)
        marks = registry.list_watermarks("demo", online_store=STORE)
        assert {k: v.end for k, v in marks.items()} == {
            ("driver_stats", 1): T0,
            ("driver_stats", 2): T0 + H,
        }
        got = registry.get_watermark("demo", "driver_stats", 1, online_store=OTHER_STORE)
        assert got is not None
        assert got.end == T0 + 3 * H
        assert registry.get_watermark("demo", "driver_stats", 3, online_store=STORE) is None
        assert registry.delete_watermarks("demo", online_store=STORE) == 2
        assert registry.list_watermarks("demo", online_store=STORE) == {}
        assert set(registry.list_watermarks("demo", online_store=OTHER_STORE)) == {
            ("driver_stats", 1)
        }
        assert set(registry.list_watermarks("other", online_store=STORE)) == {("driver_stats", 1)}


class TestSQLiteWatermarks(WatermarkContract):
    __test__ = True

    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresWatermarks(WatermarkContract):
    __test__ = True

    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url


# -- reporting, teardown and an unreachable store ----------------------------------------------


def test_rows_already_expired_are_counted_not_written(tmp_path: Path) -> None:
    """With the default one-day grace, rows of 2026 dates long past are never served: the run
    says so instead of reporting them as written."""
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    (root / "featurestore.yaml").write_text(
        f"project: exp_{uuid.uuid4().hex[:8]}\nonline_store: {{type: sqlite, path: data/o.db}}\n"
    )
    with FeatureStore(root) as fs:
        write_source(fs, rows((1, T0, T0, 0.1, 1), (2, T0, T0, 0.2, 2)))
        fs.apply([DRIVER, stats_view()])
        view = fs.materialize(T0 - H, T0 + H).view("driver_stats")
        assert (view.keys, view.written, view.expired) == (2, 0, 2)
        assert "2 already expired (not written)" in view.summary_line()
        assert online_state(fs, "driver_stats", [1, 2]) == {}


def test_apply_says_to_materialize_a_view_version_with_nothing_online(store):
    write_source(store, rows((1, T0, T0, 0.1, 1)))
    nothing_online = (
        "feature view 'driver_stats' v{} has nothing in the online store yet, so online lookups "
        "of it answer NOT_FOUND: run materialize (featurestore materialize-incremental now)"
    )
    first = store.apply([DRIVER, stats_view(), stats_view("offline_only", online=False)])
    # The offline-only view is never materialized: nothing to say about it.
    assert first.warnings == [nothing_online.format(1)]
    assert first.render().endswith("Warning: " + nothing_online.format(1))
    store.materialize_incremental(T0 + H)
    assert store.apply([DRIVER, stats_view()]).warnings == []
    # A new version has a namespace of its own, empty until materialized.
    assert store.apply([DRIVER, stats_view(ttl=3 * H)]).warnings == [nothing_online.format(2)]
    assert store.plan([DRIVER, stats_view(ttl=4 * H)]).warnings == []


def test_teardown_forgets_the_watermarks_so_incremental_refills(store):
    write_source(store, rows((1, T0, T0, 0.1, 1), (2, T0, T0, 0.2, 2)))
    store.apply([DRIVER, stats_view()])
    store.materialize_incremental(T0 + H)
    assert store.teardown() == 2
    assert store.registry.list_watermarks(store.project, online_store=store.online.identity) == {}
    again = store.materialize_incremental(T0 + H).view("driver_stats")
    assert again.written == 2
    assert set(online_state(store, "driver_stats", [1, 2])) == {1, 2}


def test_an_unreachable_store_fails_before_any_watermark_moves(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    # Port 1 on loopback: nothing listens there, so every connection is refused at once.
    (root / "featurestore.yaml").write_text(
        "project: down\nonline_store: {type: redis, url: 'redis://127.0.0.1:1/0'}\n"
    )
    with FeatureStore(root) as fs:
        write_source(fs, rows((1, T0, T0, 0.1, 1)))
        fs.apply([DRIVER, stats_view()])
        with pytest.raises(MaterializationError, match="no watermark moved"):
            fs.materialize_incremental(T0 + H)
        assert fs.registry.list_watermarks("down", online_store=fs.online.identity) == {}
