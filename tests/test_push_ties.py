"""Exact ties between a push source's file rows and its pushed rows: one answer offline and online.

A row in the source's own file and a pushed row with the same key, event time and created time
tie on every time. Offline, file order breaks the tie: the source's files, then the pushed files
in push order, whatever the files' names (the source's file here sorts before the store's data
folder, ``a.parquet``, or after it, ``zz.parquet``). Online, the later arrival wins a plain view's
tie, and an aggregated view with an ``event_id`` keeps the first copy. Both must give the same
value before and after a re-materialization. Real DuckDB, the real SQLite and Redis online stores
(``test_push_ties_spark.py`` runs the same tests on Spark).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import require_redis
from online_state_oracle import close

from featurestore import (
    Aggregation,
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    PushSource,
)
from featurestore.types import Float64, Int64

REDIS_URL = "redis://127.0.0.1:6379/7"
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
#: The instant every row of these tests is stamped with (event and created time alike).
T = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
#: Source file names that sort before (``a``) and after (``zz``) the store's ``data/store``.
NAMES = ["a.parquet", "zz.parquet"]


def plain_view(path: str) -> FeatureView:
    return FeatureView(
        name="rates",
        entities=[DRIVER],
        schema=[Field(name="rate", dtype=Float64)],
        source=PushSource(
            name="rates_push",
            batch_source=FileSource(path=path, created_timestamp_column="created"),
        ),
    )


def trips_view(path: str) -> FeatureView:
    return FeatureView(
        name="trips",
        entities=[DRIVER],
        schema=[Field(name="fare", dtype=Float64), Field(name="trip_id", dtype=Int64)],
        source=PushSource(
            name="trips_push",
            batch_source=FileSource(path=path, created_timestamp_column="created"),
        ),
        aggregations=[
            Aggregation(column="fare", function=f, window=w, name=f"fare_{f}_{label}")
            for f in ("count", "sum", "first", "last")
            for w, label in ((timedelta(hours=3), "3h"), (None, "lifetime"))
        ],
        event_id="trip_id",
    )


def rows(**columns: list[Any]) -> pd.DataFrame:
    """Rows of driver 1 stamped :data:`T` (event and created time) with ``columns``."""
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame(
        {"driver_id": pd.array([1] * n, dtype="int64"), "event_timestamp": [T] * n}
    )
    frame["created"] = frame["event_timestamp"]
    for name, values in columns.items():
        frame[name] = values
    return frame


@pytest.fixture(params=["sqlite", "redis"])
def online_yaml(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return "{type: sqlite, path: data/online.db}"
    require_redis(REDIS_URL)
    prefix = f"fstest:{uuid.uuid4().hex[:12]}:"
    return f"{{type: redis, url: '{REDIS_URL}', key_prefix: '{prefix}'}}"


@pytest.fixture
def offline_yaml() -> str:
    """The offline engine (``test_push_ties_spark.py`` runs these tests on Spark)."""
    return "{type: duckdb}"


@pytest.fixture
def repo(tmp_path: Path, offline_yaml: str, online_yaml: str) -> Iterator[Path]:
    project = f"ties_{uuid.uuid4().hex[:8]}"
    (tmp_path / "featurestore.yaml").write_text(
        f"project: {project}\noffline_store: {offline_yaml}\nonline_store: {online_yaml}\n"
    )
    (tmp_path / "data").mkdir()
    yield tmp_path
    with FeatureStore(repo_path=tmp_path) as store:
        store.online.delete_project(store.project)


def open_store(repo: Path, path: str, source: pd.DataFrame, view: FeatureView) -> FeatureStore:
    source.to_parquet(repo / path)
    store = FeatureStore(repo_path=repo)
    store.apply([DRIVER, view])
    return store


def materialize(store: FeatureStore) -> None:
    store.materialize(T - timedelta(days=1), T + timedelta(minutes=1))


def offline_values(store: FeatureStore, view: FeatureView) -> dict[str, Any]:
    entity_df = pd.DataFrame({"driver_id": [1], "event_timestamp": [T]})
    features = [f"{view.name}:{name}" for name in view.feature_names]
    table = store.get_historical_features(entity_df, features).to_arrow().to_pydict()
    return {name: table[name][0] for name in view.feature_names}


def online_values(store: FeatureStore, view: FeatureView) -> dict[str, Any]:
    features = [f"{view.name}:{name}" for name in view.feature_names]
    found = store.get_online_features(features, entity_rows=[{"driver_id": 1}], as_of=T)
    answer = found.to_dict()
    return {name: answer[name][0] for name in view.feature_names}


def assert_both(store: FeatureStore, view: FeatureView, expected: dict[str, Any]) -> None:
    """Offline at :data:`T` and online (as of :data:`T`) both give ``expected``."""
    offline, online = offline_values(store, view), online_values(store, view)
    for name, want in expected.items():
        assert close(offline[name], want), ("offline", name, offline[name], want)
        assert close(online[name], want), ("online", name, online[name], want)


@pytest.mark.parametrize("path", NAMES)
def test_a_pushed_row_wins_a_full_tie_with_the_file_row(repo: Path, path: str) -> None:
    view = plain_view(path)
    with open_store(repo, path, rows(rate=[0.5]), view) as store:
        materialize(store)
        assert_both(store, view, {"rate": 0.5})
        store.push("rates_push", rows(rate=[0.9]), to="online_and_offline")
        assert_both(store, view, {"rate": 0.9})
        materialize(store)  # writes the offline winner again: still the pushed row
        assert_both(store, view, {"rate": 0.9})


@pytest.mark.parametrize("path", NAMES)
def test_the_later_of_two_tied_pushes_wins(repo: Path, path: str) -> None:
    view = plain_view(path)
    with open_store(repo, path, rows(rate=[0.5]), view) as store:
        materialize(store)
        store.push("rates_push", rows(rate=[0.7]), to="online_and_offline")
        store.push("rates_push", rows(rate=[0.9]), to="online_and_offline")
        assert_both(store, view, {"rate": 0.9})
        materialize(store)
        assert_both(store, view, {"rate": 0.9})


@pytest.mark.parametrize("path", NAMES)
def test_an_aggregated_view_keeps_the_file_copy_and_orders_pushed_events_last(
    repo: Path, path: str
) -> None:
    view = trips_view(path)
    source = rows(fare=[10.0], trip_id=pd.array([1], dtype="Int64"))
    with open_store(repo, path, source, view) as store:
        materialize(store)
        # A copy of trip 1 (same times, another fare) arrives later: it does not count. Trip 2,
        # tied on every time with trip 1, arrives after it: it is the last event.
        pushed = rows(fare=[99.0, 5.0], trip_id=pd.array([1, 2], dtype="Int64"))
        store.push("trips_push", pushed, to="online_and_offline")
        expected: dict[str, Any] = {}
        for label in ("3h", "lifetime"):
            expected |= {
                f"fare_count_{label}": 2,
                f"fare_sum_{label}": 15.0,
                f"fare_first_{label}": 10.0,
                f"fare_last_{label}": 5.0,
            }
        assert_both(store, view, expected)
        materialize(store)
        assert_both(store, view, expected)
