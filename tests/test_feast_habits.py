"""What a Feast user types on the first day works here too, or says what to type instead.

Feast's keyword names (``materialize(start_date=, end_date=)``, ``OnlineResponse.to_df()``),
Feast's CLI habits (``version``, ``registry-dump``), Feast's ``feature_store.yaml``, and a
"did you mean" for misspelled names in the SDK, the CLI and the REST service.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import httpx
import pandas as pd
import pytest
from api_server import Server

from featurestore import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Policy,
)
from featurestore.errors import ConfigError, FeatureReferenceError, ObjectNotFoundError
from featurestore.governance.access import Principal
from featurestore.types import Float32, Int64

COMMAND = str(Path(sys.executable).parent / "featurestore")
NOW = datetime.now(UTC).replace(microsecond=0)
SEEN = NOW - timedelta(minutes=30)
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
DRIVER_STATS = FeatureView(
    name="driver_hourly_stats",
    entities=[DRIVER],
    ttl=timedelta(hours=2),
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="avg_daily_trips", dtype=Int64)],
    source=FileSource(path="data/stats.parquet"),
)
ACTIVITY = FeatureService(name="driver_activity", features=[DRIVER_STATS])
ROOT = Principal("root", frozenset({"admin"}))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one view (driver 1 seen 30 minutes ago), applied, nothing online."""
    (tmp_path / "data").mkdir()
    (tmp_path / "featurestore.yaml").write_text(
        "project: habits\nonline_store: {type: sqlite, path: data/online.db}\n"
    )
    pd.DataFrame(
        {
            "driver_id": pd.Series([1], dtype="int64"),
            "event_timestamp": [SEEN],
            "conv_rate": pd.Series([0.5], dtype="float32"),
            "avg_daily_trips": pd.Series([12], dtype="int64"),
        }
    ).to_parquet(tmp_path / "data" / "stats.parquet")
    with FeatureStore(tmp_path) as store:
        store.apply([DRIVER, DRIVER_STATS, ACTIVITY])
    return tmp_path


@pytest.fixture
def store(repo: Path) -> Iterator[FeatureStore]:
    with FeatureStore(repo) as opened:
        yield opened


def conv_rate_online(store: FeatureStore) -> list[object]:
    response = store.get_online_features(
        ["driver_hourly_stats:conv_rate"], entity_rows=[{"driver_id": 1}]
    )
    return response.to_dict()["conv_rate"]


def run(
    repo: Path, *args: str, expect: int = 0, token: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "FEATURESTORE_TOKEN": token}
    env.pop("FEATURESTORE_DEBUG", None)
    result = subprocess.run(
        [COMMAND, "--repo", str(repo), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == expect, (result.stdout, result.stderr)
    return result


# -- the SDK -----------------------------------------------------------------------------------


def test_materialize_takes_feasts_start_date_and_end_date(store: FeatureStore) -> None:
    report = store.materialize(start_date=NOW - timedelta(days=1), end_date=NOW, progress=False)
    assert [(v.view, v.written) for v in report.views] == [("driver_hourly_stats", 1)]
    assert conv_rate_online(store) == [0.5]


def test_materialize_incremental_takes_feasts_end_date(store: FeatureStore) -> None:
    store.materialize_incremental(end_date=NOW, progress=False)
    assert conv_rate_online(store) == [0.5]


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda s: s.materialize(NOW, NOW, start_date=NOW), ["start=", "start_date=", "both"]),
        (lambda s: s.materialize(end_date=NOW), ["start=", "start_date="]),
        (lambda s: s.materialize_incremental(), ["end=", "end_date="]),
        (lambda s: s.materialize_incremental(NOW, end_date=NOW), ["end=", "end_date=", "both"]),
    ],
)
def test_a_window_bound_given_twice_or_not_at_all_is_an_error(
    store: FeatureStore, call: object, words: list[str]
) -> None:
    with pytest.raises(TypeError) as raised:
        call(store)  # type: ignore[operator]
    assert all(word in str(raised.value) for word in words), raised.value
    assert conv_rate_online(store) == [None]  # nothing was written


def test_online_response_to_df_is_feasts_frame(store: FeatureStore) -> None:
    store.materialize(NOW - timedelta(days=1), NOW, progress=False)
    response = store.get_online_features(
        ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"],
        entity_rows=[{"driver_id": 1}, {"driver_id": 999}],
    )
    frame = response.to_df()
    pd.testing.assert_frame_equal(frame, response.to_pandas())
    assert list(frame.columns) == ["driver_id", "conv_rate", "avg_daily_trips"]
    assert frame["avg_daily_trips"].tolist()[0] == 12

    stamped = response.to_df(include_event_timestamps=True)
    assert list(stamped.columns) == [
        "driver_id",
        "driver_id__ts",
        "conv_rate",
        "conv_rate__ts",
        "avg_daily_trips",
        "avg_daily_trips__ts",
    ]
    seen = int(SEEN.timestamp())
    assert stamped["conv_rate__ts"].tolist()[0] == seen
    assert stamped["avg_daily_trips__ts"].tolist()[0] == seen
    assert stamped["conv_rate__ts"].isna().tolist() == [False, True]  # driver 999: not found
    assert stamped["driver_id__ts"].isna().all()
    assert str(stamped["conv_rate__ts"].dtype) == "Int64"


@pytest.mark.parametrize(
    ("call", "error", "suggestion"),
    [
        (
            lambda s: s.get_feature_view("driver_hourly_stat"),
            ObjectNotFoundError,
            "driver_hourly_stats",
        ),
        (lambda s: s.get_entity("drivr"), ObjectNotFoundError, "driver"),
        (lambda s: s.get_feature_service("driver_activty"), ObjectNotFoundError, "driver_activity"),
        (
            lambda s: s.get_online_features(
                ["driver_hourly_stat:conv_rate"], entity_rows=[{"driver_id": 1}]
            ),
            FeatureReferenceError,
            "driver_hourly_stats",
        ),
        (
            lambda s: s.get_historical_features(
                pd.DataFrame({"driver_id": [1], "event_timestamp": [NOW]}),
                ["driver_hourly_stats:conv_rat"],
            ),
            FeatureReferenceError,
            "conv_rate",
        ),
        (
            lambda s: s.get_online_features("driver_activty", entity_rows=[{"driver_id": 1}]),
            ObjectNotFoundError,
            "driver_activity",
        ),
        (
            lambda s: s.materialize(NOW, NOW, ["driver_hourly_stat"], progress=False),
            Exception,
            "driver_hourly_stats",
        ),
    ],
)
def test_a_misspelled_name_gets_did_you_mean(
    store: FeatureStore, call: object, error: type[Exception], suggestion: str
) -> None:
    with pytest.raises(error) as raised:
        call(store)  # type: ignore[operator]
    assert f"did you mean {suggestion!r}?" in str(raised.value), raised.value


def test_a_name_close_to_nothing_gets_no_suggestion(store: FeatureStore) -> None:
    with pytest.raises(ObjectNotFoundError) as raised:
        store.get_feature_view("payments")
    assert "did you mean" not in str(raised.value)
    assert "'payments'" in str(raised.value)


def test_feasts_feature_store_yaml_gets_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "feature_store.yaml").write_text(
        "project: my_project\nregistry: data/registry.db\nprovider: local\n"
        "online_store: {type: sqlite, path: data/online_store.db}\n"
    )
    with pytest.raises(ConfigError) as raised:
        FeatureStore(tmp_path)
    message = str(raised.value)
    assert "feature_store.yaml" in message
    assert "featurestore.yaml" in message
    assert "project: NAME" in message
    error = run(tmp_path, "plan", expect=1).stderr
    assert "Feast's feature_store.yaml but no featurestore.yaml" in error


# -- the CLI -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_version_and_registry_dump(repo: Path) -> None:
    assert run(repo, "version").stdout.strip() == f"featurestore {version('featurestore')}"
    dump = json.loads(run(repo, "registry-dump").stdout)
    assert dump["project"] == "habits"
    assert [e["name"] for e in dump["entities"]] == ["driver"]
    (view,) = dump["feature_views"]
    assert view["name"] == "driver_hourly_stats"
    assert view["version"] == 1
    assert view["content_hash"] == DRIVER_STATS.content_hash
    assert view["spec"] == DRIVER_STATS.spec()
    assert [s["name"] for s in dump["feature_services"]] == ["driver_activity"]


@pytest.mark.slow
def test_cli_did_you_mean_for_names_and_commands(repo: Path) -> None:
    error = run(repo, "describe", "driver_hourly_stat", expect=1).stderr
    assert "no object named 'driver_hourly_stat'" in error
    assert "did you mean 'driver_hourly_stats'?" in error
    assert "did you mean 'driver'?" in run(repo, "history", "drivr", expect=1).stderr
    error = run(repo, "get-online-features", "--features", "driver_hourly_stats:conv_rat",
                "--entity", "driver_id=1", expect=1).stderr  # fmt: skip
    assert "did you mean 'conv_rate'?" in error
    assert "Did you mean 'registry-dump'?" in run(repo, "registry_dump", expect=2).stderr
    # Unknown commands: click's own suggestion (difflib too), kept as click words it.
    assert "'materialize'?" in run(repo, "materialise", expect=2).stderr


@pytest.mark.slow
def test_cli_dump_and_suggestions_only_show_what_the_principal_may_describe(repo: Path) -> None:
    with FeatureStore(repo, principal=ROOT) as store:
        store.apply(
            [
                DRIVER,
                DRIVER_STATS,
                ACTIVITY,
                Policy(name="admins", roles=["admin"], actions=["admin"]),
            ]
        )
        denied, _ = store.create_key("eve", roles=["nobody"], kind="user")
        admin, _ = store.create_key("alice", roles=["admin"], kind="user")
    dump = json.loads(run(repo, "registry-dump", token=denied).stdout)
    assert dump == {
        "project": "habits",
        "entities": [],
        "feature_views": [],
        "feature_services": [],
    }
    error = run(repo, "describe", "driver_hourly_stat", expect=1, token=denied).stderr
    assert "no object named 'driver_hourly_stat'" in error
    assert "did you mean" not in error
    assert len(json.loads(run(repo, "registry-dump", token=admin).stdout)["feature_views"]) == 1


# -- REST --------------------------------------------------------------------------------------


def test_rest_errors_suggest_the_closest_name(store: FeatureStore) -> None:
    with Server(store) as server:
        response = httpx.get(f"{server.url}/v1/feature-views/driver_hourly_stat", timeout=10)
        assert response.status_code == 404, response.text
        assert "did you mean 'driver_hourly_stats'?" in response.text
        response = httpx.post(
            f"{server.url}/get-online-features",
            json={"features": ["driver_hourly_stats:conv_rat"], "entities": {"driver_id": [1]}},
            timeout=10,
        )
        assert response.status_code == 400, response.text
        assert "did you mean 'conv_rate'?" in response.text
