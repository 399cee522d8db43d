"""Push ingestion through the facade: real DuckDB, the real online stores, files on disk.

Every test runs on the embedded SQLite online store and on Redis (127.0.0.1:6379, database 15,
a project of its own per test, torn down afterwards).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from conftest import require_redis

from featurestore import (
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    PushMode,
    PushSource,
)
from featurestore.errors import (
    DefinitionError,
    ObjectNotFoundError,
    OnlineStoreError,
    PushError,
)
from featurestore.types import Float32, Int64, String

T0 = datetime(2026, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
REDIS_URL = os.environ.get("FEATURESTORE_TEST_PUSH_REDIS_URL", "redis://127.0.0.1:6379/15")
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
BATCH = FileSource(path="data/stats.parquet", created_timestamp_column="created")
PUSH = PushSource(name="stats_push", batch_source=BATCH)
FEATURES = ["driver_stats:rate", "driver_stats:trips", "driver_stats:label"]


def stats_view(
    name: str = "driver_stats", *, online: bool = True, ttl: timedelta = 2 * H
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
        source=PUSH,
    )


def history() -> pd.DataFrame:
    """The batch source: driver 1 at T0 and driver 2 at T0 + 1h."""
    return pd.DataFrame(
        {
            "driver_id": pd.array([1, 2], dtype="int64"),
            "event_timestamp": [T0, T0 + H],
            "created": [T0, T0 + H],
            "rate": pd.array([0.5, 0.25], dtype="float32"),
            "trips": pd.array([10, 20], dtype="Int64"),
            "label": ["a", "b"],
        }
    )


def online_yaml(backend: str, tmp_path: Path) -> str:
    # The fixed dates of these tests must not expire while they run.
    if backend == "sqlite":
        return (
            f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}, expiry_grace: 3650d}}\n"
        )
    return f"online_store: {{type: redis, url: '{REDIS_URL}', expiry_grace: 3650d}}\n"


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require_redis(REDIS_URL)
    return str(request.param)


def open_store(tmp_path: Path, backend: str, *views: FeatureView) -> FeatureStore:
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    history().to_parquet(tmp_path / "data" / "stats.parquet")
    project = f"push_{uuid.uuid4().hex[:10]}"
    (tmp_path / "featurestore.yaml").write_text(
        f"project: {project}\nregistry: sqlite:///{tmp_path / 'registry.db'}\n"
        + online_yaml(backend, tmp_path)
    )
    store = FeatureStore(tmp_path)
    store.apply([DRIVER, *(views or (stats_view(),))])
    return store


@pytest.fixture
def store(tmp_path: Path, backend: str) -> Iterator[FeatureStore]:
    fs = open_store(tmp_path, backend)
    try:
        yield fs
    finally:
        fs.teardown()
        fs.close()


def pushed(
    *items: tuple[int, datetime, float | None, int | None, str | None],
) -> dict[str, list[Any]]:
    """Rows ``(driver_id, event_timestamp, rate, trips, label)`` as REST-style columns."""
    columns = ["driver_id", "event_timestamp", "rate", "trips", "label"]
    return {name: [row[i] for row in items] for i, name in enumerate(columns)}


def online(
    store: FeatureStore, *drivers: int, as_of: datetime = T0 + 3 * H
) -> dict[str, list[Any]]:
    response = store.get_online_features(
        FEATURES, entity_rows=[{"driver_id": d} for d in drivers], as_of=as_of
    )
    got = response.to_dict()
    got["event_timestamp"] = response.event_timestamps["label"]
    return got


def historical(store: FeatureStore, drivers: list[int], times: list[datetime]) -> pd.DataFrame:
    entity_df = pd.DataFrame({"driver_id": drivers, "event_timestamp": times})
    return store.get_historical_features(entity_df, FEATURES).to_pandas()


def push_files(store: FeatureStore) -> list[Path]:
    """Everything in the push folder, staged files included."""
    folder = store.config.data_dir / store.project / "push" / "stats_push"
    return sorted(folder.iterdir()) if folder.is_dir() else []


# -- online -----------------------------------------------------------------------------------


def test_push_online_is_served(store: FeatureStore) -> None:
    report = store.push(
        "stats_push", pushed((1, T0 + 2 * H, 0.75, 11, "x"), (3, T0 + 2 * H, 1.5, 1, "y"))
    )
    assert report.rows == 2
    assert report.mode is PushMode.ONLINE
    [view] = report.online
    assert (view.view, view.version, view.result.written) == ("driver_stats", 1, 2)
    assert report.offline_file is None
    assert push_files(store) == []
    got = online(store, 1, 3, 2)
    assert got["rate"] == [0.75, 1.5, None]
    assert got["trips"] == [11, 1, None]
    assert got["label"] == ["x", "y", None]
    assert got["event_timestamp"][:2] == [T0 + 2 * H] * 2


def test_push_never_overwrites_newer_online(store: FeatureStore) -> None:
    store.push("stats_push", pushed((1, T0 + 2 * H, 0.75, 11, "new")))
    report = store.push("stats_push", pushed((1, T0 + H, 0.1, 1, "old")))
    assert report.online[0].result.skipped_older == 1
    assert online(store, 1)["label"] == ["new"]


def test_latest_row_per_key_wins_within_a_push(store: FeatureStore) -> None:
    rows = pushed(
        (1, T0 + 2 * H, 0.1, 1, "later-event"),
        (1, T0 + H, 0.2, 2, "earlier-event"),
        (2, T0 + 2 * H, 0.3, 3, "first"),
        (2, T0 + 2 * H, 0.4, 4, "second"),
    )
    rows["created"] = [T0, T0, T0 + H, T0]  # driver 2: the first row was created later
    report = store.push("stats_push", rows)
    assert report.online[0].keys == 2
    assert online(store, 1, 2)["label"] == ["later-event", "first"]


def test_created_defaults_to_push_time_so_a_correction_wins(store: FeatureStore) -> None:
    store.push("stats_push", pushed((1, T0 + 2 * H, 0.1, 1, "original")))
    store.push("stats_push", pushed((1, T0 + 2 * H, 0.2, 2, "correction")))
    assert online(store, 1)["label"] == ["correction"]


def test_push_time_zones_are_converted_to_utc(store: FeatureStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    store.push("stats_push", pushed((1, (T0 + 4 * H).astimezone(plus_two), 0.1, 1, "aware")))
    strings = pushed((3, T0, 0.2, 2, "naive"), (4, T0, 0.3, 3, "offset"))
    strings["event_timestamp"] = ["2026-03-01T02:00:00", "2026-03-01T05:00:00+02:00"]
    store.push("stats_push", strings)
    got = online(store, 1, 3, 4, as_of=T0 + 5 * H)
    assert got["event_timestamp"] == [T0 + 4 * H, T0 + 2 * H, T0 + 3 * H]


def test_pandas_and_arrow_input(store: FeatureStore) -> None:
    frame = pd.DataFrame(pushed((4, T0 + 2 * H, 0.5, None, None)))
    frame["trips"] = frame["trips"].astype("Int64")
    store.push("stats_push", frame)
    store.push("stats_push", pa.Table.from_pydict(pushed((5, T0 + 2 * H, 0.25, 7, "z"))))
    got = online(store, 4, 5)
    assert got["rate"] == [0.5, 0.25]
    assert got["trips"] == [None, 7]


def test_every_view_of_the_source_receives_the_push(tmp_path: Path, backend: str) -> None:
    store = open_store(tmp_path, backend, stats_view(), stats_view("driver_stats_long", ttl=48 * H))
    try:
        report = store.push("stats_push", pushed((1, T0 + 2 * H, 0.75, 11, "x")))
        assert sorted(v.view for v in report.online) == ["driver_stats", "driver_stats_long"]
        response = store.get_online_features(
            ["driver_stats_long:label"], entity_rows=[{"driver_id": 1}], as_of=T0 + 3 * H
        )
        assert response.to_dict()["label"] == ["x"]
    finally:
        store.teardown()
        store.close()


# -- offline ----------------------------------------------------------------------------------


def test_push_offline_is_seen_by_the_next_retrieval(store: FeatureStore) -> None:
    drivers, times = [1, 1, 3], [T0 + 30 * 60 * timedelta(seconds=1), T0 + 2 * H, T0 + 2 * H]
    before = historical(store, drivers, times)
    assert before["label"].tolist()[:2] == ["a", "a"]
    assert pd.isna(before["label"][2])
    report = store.push(
        "stats_push",
        pushed(
            (1, T0 + 90 * 60 * timedelta(seconds=1), 0.9, 9, "pushed"), (3, T0 + H, 0.3, 3, "new")
        ),
        to="offline",
    )
    assert report.online == []
    assert report.offline_file is not None
    assert [p.name.startswith("part-") for p in push_files(store)] == [True]
    after = historical(store, drivers, times)
    # Point in time: the pushed row of driver 1 is after the first entity row, before the second.
    assert after["label"].tolist() == ["a", "pushed", "new"]
    assert after["trips"].tolist() == [10, 9, 3]
    # Offline only: nothing changed online.
    assert online(store, 1, 3)["label"] == [None, None]


def test_push_online_and_offline(store: FeatureStore) -> None:
    store.push(
        "stats_push", pushed((7, T0 + 2 * H, 0.7, 70, "both")), to=PushMode.ONLINE_AND_OFFLINE
    )
    assert online(store, 7)["label"] == ["both"]
    assert historical(store, [7], [T0 + 2 * H])["label"].tolist() == ["both"]


def test_materialize_reads_pushed_offline_rows(store: FeatureStore) -> None:
    store.push("stats_push", pushed((8, T0 + 2 * H, 0.8, 80, "offline")), to="offline")
    store.materialize(T0 - H, T0 + 3 * H)
    assert online(store, 8, 1, as_of=T0 + 2 * H)["label"] == ["offline", "a"]


# -- bad pushes write nothing -----------------------------------------------------------------


BAD_PUSHES = [
    ("missing", lambda r: r.pop("trips"), "missing column(s) ['trips']"),
    (
        "string for float",
        lambda r: r.__setitem__("rate", ["fast"]),
        "column 'rate' must hold float",
    ),
    ("fraction for int", lambda r: r.__setitem__("trips", [1.5]), "column 'trips': cannot convert"),
    ("bool for int", lambda r: r.__setitem__("trips", [True]), "column 'trips' must hold int64"),
    (
        "string key",
        lambda r: r.__setitem__("driver_id", ["1"]),
        "column 'driver_id' must hold int64",
    ),
    ("null key", lambda r: r.__setitem__("driver_id", [None]), "column 'driver_id' has 1 null"),
    (
        "null time",
        lambda r: r.__setitem__("event_timestamp", [None]),
        "'event_timestamp' has 1 null",
    ),
    ("bad time", lambda r: r.__setitem__("event_timestamp", ["yesterday"]), "not an ISO 8601"),
    ("number time", lambda r: r.__setitem__("event_timestamp", [1]), "must hold timestamps"),
    ("ragged", lambda r: r.__setitem__("label", ["a", "b"]), "different lengths"),
    ("not a list", lambda r: r.__setitem__("label", "abc"), "must be a list of values"),
    ("overflow", lambda r: r.__setitem__("trips", [2**70]), "column 'trips'"),
]


@pytest.mark.parametrize(("case", "spoil", "message"), BAD_PUSHES, ids=[c[0] for c in BAD_PUSHES])
def test_bad_push_is_refused_and_writes_nothing(
    store: FeatureStore, case: str, spoil: Any, message: str
) -> None:
    rows = pushed((1, T0 + 2 * H, 0.75, 11, "x"))
    spoil(rows)
    with pytest.raises(PushError, match=None) as caught:
        store.push("stats_push", rows, to="online_and_offline")
    assert message in str(caught.value)
    assert "stats_push" in str(caught.value)
    assert push_files(store) == []
    assert online(store, 1)["label"] == [None]


def test_unknown_source_and_mode(store: FeatureStore) -> None:
    with pytest.raises(ObjectNotFoundError, match=r"push source 'nope'.*stats_push"):
        store.push("nope", pushed((1, T0, 0.1, 1, "x")))
    with pytest.raises(PushError, match="'to' must be one of"):
        store.push("stats_push", pushed((1, T0, 0.1, 1, "x")), to="everywhere")


def test_extra_columns_are_ignored_and_reported(store: FeatureStore) -> None:
    rows = pushed((1, T0 + 2 * H, 0.75, 11, "x"))
    rows["note"] = ["not a feature"]
    report = store.push("stats_push", rows, to="online_and_offline")
    assert report.ignored_columns == ["note"]
    assert "note" not in pd.read_parquet(report.offline_file).columns


def test_empty_push_is_a_no_op(store: FeatureStore) -> None:
    report = store.push("stats_push", pushed(), to="online_and_offline")
    assert report.rows == 0
    assert report.online == []
    assert push_files(store) == []


def test_offline_only_views_refuse_online_pushes(tmp_path: Path, backend: str) -> None:
    store = open_store(tmp_path, backend, stats_view(online=False))
    try:
        with pytest.raises(PushError, match="no view reading it is served online"):
            store.push("stats_push", pushed((1, T0, 0.1, 1, "x")))
        assert push_files(store) == []
        store.push("stats_push", pushed((1, T0 + H, 0.1, 1, "x")), to="offline")
        assert len(push_files(store)) == 1
    finally:
        store.teardown()
        store.close()


def test_online_failure_leaves_no_offline_file(tmp_path: Path) -> None:
    store = open_store(tmp_path, "sqlite")
    try:
        # A real fault: point the online store at a port where nothing listens.
        text = (tmp_path / "featurestore.yaml").read_text().splitlines()
        text[-1] = "online_store: {type: redis, url: 'redis://127.0.0.1:1/0', expiry_grace: 3650d}"
        (tmp_path / "featurestore.yaml").write_text("\n".join(text) + "\n")
        down = FeatureStore(tmp_path)
        with pytest.raises(OnlineStoreError, match="nothing was written offline"):
            down.push("stats_push", pushed((1, T0 + 2 * H, 0.1, 1, "x")), to="online_and_offline")
        assert push_files(store) == []
        down.close()
    finally:
        store.close()


# -- definitions --------------------------------------------------------------------------------


def test_push_source_round_trips_through_the_registry(store: FeatureStore) -> None:
    view = store.get_feature_view("driver_stats")
    assert isinstance(view.source, PushSource)
    assert view.source == PUSH
    assert view.source.batch_source == BATCH
    assert view.spec() == stats_view().spec()


def test_push_source_needs_a_file_source() -> None:
    with pytest.raises(DefinitionError, match="batch_source must be a FileSource"):
        PushSource(name="p", batch_source="data/x.parquet")  # type: ignore[arg-type]


def test_a_source_may_not_read_the_stores_own_folder(tmp_path: Path) -> None:
    store = open_store(tmp_path, "sqlite")
    try:
        greedy = FeatureView(
            name="greedy",
            entities=[DRIVER],
            schema=[Field(name="rate", dtype=Float32)],
            source=FileSource(path="data"),
        )
        with pytest.raises(DefinitionError, match="store's own data folder"):
            store.apply([greedy])
    finally:
        store.close()
