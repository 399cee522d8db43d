"""The lineage graph in the registry, saved datasets, `featurestore lineage` and GET /v1/lineage.

Every test works on the repository of the REST tests (tests/api_server.py): entities driver and
customer, view driver_stats on a push source (batch file data/driver_stats.parquet), view
customer_profile on data/customers.parquet, service ranking over both; applied and materialized,
on the embedded SQLite online store and a SQLite registry in tmp_path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import pyarrow as pa
import pytest
from api_server import (
    CUSTOMER,
    CUSTOMER_PROFILE,
    DRIVER,
    NOW,
    SERVICE,
    Server,
    driver_stats,
    make_repo,
)

from featurestore import FeatureStore, FeatureView, Field, FileSource
from featurestore.errors import (
    FeatureStoreError,
    ObjectNotFoundError,
    RetrievalError,
    SavedDatasetError,
)
from featurestore.governance.audit import AuditLog
from featurestore.governance.datasets import entity_fingerprint
from featurestore.governance.lineage import LineageEdge, LineageNode
from featurestore.offline.duckdb.job import DuckDBRetrievalJob
from featurestore.types import Int64

SQLITE_ONLINE = "{type: sqlite, path: data/online.db, expiry_grace: 36500d}"
COMMAND = str(Path(sys.executable).parent / "featurestore")
SOURCE = "data/driver_stats.parquet"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    opened = make_repo(tmp_path / "repo", SQLITE_ONLINE)
    try:
        yield opened
    finally:
        opened.close()


def entity_frame(drivers: list[int] | None = None) -> pd.DataFrame:
    drivers = drivers or [1, 2, 3]
    return pd.DataFrame(
        {
            "driver_id": drivers,
            "customer_id": [7, 8, 7][: len(drivers)],
            "event_timestamp": [NOW] * len(drivers),
        }
    )


def node(kind: str, name: str, version: int | None = None) -> LineageNode:
    return LineageNode(kind, name, version)


def pairs(found: list[LineageEdge], relation: str) -> set[tuple[str, str]]:
    return {(e.source.id, e.target.id) for e in found if e.relation == relation}


# -- the graph after apply, materialize, push ----------------------------------------------------


def test_apply_records_sources_entities_views_and_services(store: FeatureStore) -> None:
    result = store.lineage.graph.trace("ranking", "upstream")
    assert pairs(result.edges, "feeds") == {
        (f"source:{SOURCE}", "push_source:driver_stats_push"),
        ("push_source:driver_stats_push", "feature_view:driver_stats@1"),
        ("source:data/customers.parquet", "feature_view:customer_profile@1"),
    }
    assert pairs(result.edges, "keys") == {
        ("entity:driver", "feature_view:driver_stats@1"),
        ("entity:customer", "feature_view:customer_profile@1"),
    }
    assert pairs(result.edges, "part_of") == {
        ("feature_view:driver_stats@1", "feature_service:ranking@1"),
        ("feature_view:customer_profile@1", "feature_service:ranking@1"),
    }
    assert result.roots == [node("feature_service", "ranking", 1)]


def test_apply_records_each_definition_edge_once(store: FeatureStore) -> None:
    before = store.lineage.graph.trace("ranking", "upstream").edges
    store.apply([DRIVER, CUSTOMER, driver_stats(), CUSTOMER_PROFILE, SERVICE])
    store.apply([DRIVER, CUSTOMER, driver_stats(description="new words"), CUSTOMER_PROFILE])
    after = store.lineage.graph.trace("ranking", "upstream").edges
    assert sorted(e.key for e in after) == sorted(e.key for e in before)


def test_a_new_version_gets_its_edges_and_the_old_ones_stay(store: FeatureStore) -> None:
    store.apply([driver_stats(ttl=timedelta(hours=3))])
    result = store.lineage.graph.trace("driver_stats", "both", kind="feature_view")
    assert result.roots == [
        node("feature_view", "driver_stats", 1),
        node("feature_view", "driver_stats", 2),
    ]
    assert pairs(result.edges, "part_of") >= {
        ("feature_view:driver_stats@1", "feature_service:ranking@1"),
        ("feature_view:driver_stats@2", "feature_service:ranking@1"),
    }
    assert ("push_source:driver_stats_push", "feature_view:driver_stats@2") in pairs(
        result.edges, "feeds"
    )


def test_materialization_runs_lead_to_the_online_store(store: FeatureStore) -> None:
    result = store.lineage.graph.trace("driver_stats", "downstream")
    runs = [e for e in result.edges if e.relation == "materialized_by"]
    assert len(runs) == 1
    run = runs[0]
    assert run.source == node("feature_view", "driver_stats", 1)
    assert run.target == node("materialization", run.run_id or "")
    assert run.detail["window_end"] == NOW.isoformat()
    assert run.detail["window_start"] == (NOW - timedelta(days=1)).isoformat()
    assert run.detail["keys"] == 4
    assert run.detail["written"] >= 1
    writes = [e for e in result.edges if e.relation == "writes"]
    assert [(w.source, w.target) for w in writes] == [
        (run.target, node("online_store", "online_store"))
    ]
    store.materialize_incremental(NOW, ["driver_stats"], progress=False)
    again = store.lineage.graph.trace("driver_stats", "downstream").edges
    assert len([e for e in again if e.relation == "materialized_by"]) == 2


def test_only_the_latest_runs_are_shown_when_asked(store: FeatureStore) -> None:
    for _ in range(3):
        store.materialize_incremental(NOW, ["driver_stats"], progress=False)
    graph = store.lineage.graph
    everything = graph.trace("driver_stats", "downstream")
    assert everything.omitted_runs == 0
    runs = [e for e in everything.edges if e.relation == "materialized_by"]
    assert len(runs) == 4
    latest = graph.trace("driver_stats", "downstream", runs=2)
    kept = [e for e in latest.edges if e.relation == "materialized_by"]
    assert [e.run_id for e in kept] == [e.run_id for e in runs[-2:]]
    # Each materialization was validated too: the cap keeps the latest 2 of each kind.
    assert len([e for e in latest.edges if e.relation == "validated_by"]) == 2
    assert latest.omitted_runs == 4
    assert len([e for e in latest.edges if e.relation == "writes"]) == 2
    assert latest.to_dict()["omitted_runs"] == 4
    # A run asked for by its id is always shown.
    oldest = runs[0].target.name
    assert graph.trace(oldest, "upstream", runs=1).roots == [node("materialization", oldest)]


def test_a_failed_materialization_records_no_run(store: FeatureStore) -> None:
    (store.repo_path / SOURCE).unlink()
    with pytest.raises(FeatureStoreError, match=r"driver_stats\.parquet"):
        store.materialize(NOW - timedelta(days=1), NOW, ["driver_stats"], progress=False)
    runs = [
        e
        for e in store.lineage.graph.trace("driver_stats", "downstream").edges
        if e.relation == "materialized_by"
    ]
    assert len(runs) == 1  # the fixture's run only


def pushed_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": pd.Series([1, 9], dtype="int64"),
            "event_timestamp": [NOW, NOW],
            "created": [NOW, NOW],
            "conv_rate": pd.Series([0.7, 0.1], dtype="float32"),
            "acc_rate": pd.Series([0.5, 0.5], dtype="float32"),
            "trips": pd.Series([3, 4], dtype="int64"),
        }
    )


def test_push_to_the_offline_store_is_recorded(store: FeatureStore) -> None:
    store.push("driver_stats_push", pushed_rows(), to="online")
    assert store.lineage.graph.nodes_named("push/driver_stats_push") == []
    report = store.push("driver_stats_push", pushed_rows(), to="offline")
    result = store.lineage.graph.trace("driver_stats_push", "downstream")
    pushed = [e for e in result.edges if e.relation == "pushed"]
    assert len(pushed) == 1
    assert pushed[0].target == node("store_data", "push/driver_stats_push")
    assert pushed[0].detail == {"rows": 2, "file": report.offline_file}
    assert ("store_data:push/driver_stats_push", "feature_view:driver_stats@1") in pairs(
        result.edges, "feeds"
    )
    store.push("driver_stats_push", pushed_rows(), to="online_and_offline")
    again = store.lineage.graph.trace("push/driver_stats_push", "upstream").edges
    assert len([e for e in again if e.relation == "pushed"]) == 2


# -- saved datasets ------------------------------------------------------------------------------


def test_save_dataset_writes_the_frame_and_records_it(store: FeatureStore) -> None:
    job = store.get_historical_features(entity_frame(), "ranking")
    saved = job.save_dataset("ranking_train")
    path = store.config.data_dir / store.project / "datasets" / "ranking_train.parquet"
    assert saved.location == str(path)
    assert path.is_file()
    pd.testing.assert_frame_equal(pd.read_parquet(path), job.to_pandas(), check_dtype=False)
    assert saved.views == {"driver_stats": 1, "customer_profile": 1}
    assert saved.rows == 3
    assert saved.service == "ranking"
    assert saved.entity_columns == ("driver_id", "customer_id", "event_timestamp")
    assert saved.fingerprint == entity_fingerprint(path, saved.entity_columns)
    assert len(saved.fingerprint) == 64
    assert store.get_saved_dataset("ranking_train") == saved
    assert [d.name for d in store.list_saved_datasets()] == ["ranking_train"]
    [record] = AuditLog(store.registry, store.project).query(action="save_dataset")
    assert record.resource == "saved_dataset:ranking_train"
    assert record.outcome == "ok"
    assert record.detail["views"] == saved.views
    # Nothing staged is left behind.
    assert sorted(p.name for p in path.parent.iterdir()) == ["ranking_train.parquet"]


def test_the_fingerprint_follows_the_entity_rows_not_the_features(store: FeatureStore) -> None:
    first = store.get_historical_features(entity_frame(), ["driver_stats:trips"]).save_dataset("a")
    second = store.get_historical_features(
        pa.Table.from_pandas(entity_frame()), ["customer_profile:tier", "driver_stats:conv_rate"]
    ).save_dataset("b")
    other = store.get_historical_features(entity_frame([3, 2, 1]), ["driver_stats:trips"])
    assert first.fingerprint == second.fingerprint
    assert other.save_dataset("c").fingerprint != first.fingerprint
    assert first.views == {"driver_stats": 1}
    assert first.service is None


def test_a_name_is_saved_once_unless_overwritten(store: FeatureStore) -> None:
    job = store.get_historical_features(entity_frame(), ["driver_stats:trips"])
    job.save_dataset("train")
    with pytest.raises(SavedDatasetError, match=r"'train' already exists.*overwrite=True"):
        store.get_historical_features(entity_frame([1]), ["driver_stats:trips"]).save_dataset(
            "train"
        )
    assert store.get_saved_dataset("train").rows == 3
    replaced = store.get_historical_features(entity_frame([1]), ["driver_stats:trips"])
    assert replaced.save_dataset("train", overwrite=True).rows == 1
    assert store.get_saved_dataset("train").rows == 1
    assert len(pd.read_parquet(store.get_saved_dataset("train").location)) == 1
    used = [
        e for e in store.lineage.graph.trace("train", "upstream").edges if e.relation == "used_by"
    ]
    assert len(used) == 2  # one per save: the history stays


def test_bad_names_and_foreign_jobs_are_refused(store: FeatureStore) -> None:
    job = store.get_historical_features(entity_frame(), ["driver_stats:trips"])
    with pytest.raises(SavedDatasetError, match=r"saved dataset name '\.\./x' is invalid"):
        job.save_dataset("../x")
    with pytest.raises(ObjectNotFoundError, match=r"no saved dataset 'nope'.*saved: \[\]"):
        store.get_saved_dataset("nope")
    engine_job = DuckDBRetrievalJob(duckdb.connect(), "SELECT 1 AS x")
    with pytest.raises(RetrievalError, match=r"only a job from FeatureStore\.get_historical"):
        engine_job.save_dataset("x")


def test_a_failed_save_leaves_no_file_and_no_record(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = store.get_historical_features(entity_frame(), ["driver_stats:trips"])

    def broken(path: str) -> None:
        Path(path).write_bytes(b"half a file")
        raise RetrievalError("disk full")

    monkeypatch.setattr(job, "to_parquet", broken)
    with pytest.raises(RetrievalError, match="disk full"):
        job.save_dataset("train")
    assert store.list_saved_datasets() == []
    folder = store.config.data_dir / store.project / "datasets"
    assert list(folder.iterdir()) == []
    assert store.lineage.graph.nodes_named("train") == []


# -- the answers: what breaks, what built it -----------------------------------------------------


def test_what_breaks_if_the_source_changes(store: FeatureStore) -> None:
    store.get_historical_features(entity_frame(), "ranking").save_dataset("ranking_train")
    result = store.lineage.graph.trace(SOURCE, "downstream")
    ids = {n.id for n in result.nodes}
    assert {
        f"source:{SOURCE}",
        "push_source:driver_stats_push",
        "feature_view:driver_stats@1",
        "feature_service:ranking@1",
        "saved_dataset:ranking_train",
        "online_store:online_store",
    } <= ids
    assert not any("customer" in i for i in ids)
    # A path may be given as it would be typed.
    assert store.lineage.graph.trace(f"./{SOURCE}", "downstream").roots == result.roots


def test_which_views_and_versions_built_a_training_set(store: FeatureStore) -> None:
    store.get_historical_features(entity_frame(), "ranking").save_dataset("before")
    store.apply([driver_stats(ttl=timedelta(hours=3))])  # driver_stats v2
    store.get_historical_features(entity_frame(), "ranking").save_dataset("after")
    before = {n.id for n in store.lineage.graph.trace("before", "upstream").nodes}
    assert "feature_view:driver_stats@1" in before
    assert "feature_view:driver_stats@2" not in before  # not through the service
    assert "feature_service:ranking@1" in before
    assert f"source:{SOURCE}" in before
    after = store.get_saved_dataset("after")
    assert after.views == {"driver_stats": 2, "customer_profile": 1}
    # Downstream of v1: the dataset built with v1 only.
    v1 = store.lineage.graph.trace("driver_stats", "downstream", kind="feature_view")
    reached = {(e.source.id, e.target.id) for e in v1.edges if e.target.kind == "saved_dataset"}
    assert ("feature_view:driver_stats@1", "saved_dataset:before") in reached
    assert ("feature_view:driver_stats@2", "saved_dataset:after") in reached
    assert ("feature_view:driver_stats@1", "saved_dataset:after") not in reached


def test_unknown_names_are_reported(store: FeatureStore) -> None:
    with pytest.raises(ObjectNotFoundError, match=r"no lineage node named 'nothing'"):
        store.lineage.graph.trace("nothing")


# -- featurestore lineage ------------------------------------------------------------------------


def run_cli(repo: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("FEATURESTORE_TOKEN", None)
    result = subprocess.run(
        [COMMAND, "--repo", str(repo), "lineage", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == expect, (result.stdout, result.stderr)
    return result


@pytest.mark.slow
def test_cli_in_all_three_formats(store: FeatureStore) -> None:
    store.get_historical_features(entity_frame(), "ranking").save_dataset("ranking_train")
    repo = store.repo_path

    text = run_cli(repo, SOURCE, "--downstream").stdout
    assert text.startswith(f"source {SOURCE}  (downstream)")
    assert "-> feeds -> push source driver_stats_push" in text
    assert "-> part_of -> feature service ranking v1" in text
    assert "-> used_by -> saved dataset ranking_train" in text
    assert "-> writes -> online store online_store" in text
    assert "upstream" not in text

    document = json.loads(run_cli(repo, "ranking_train", "--upstream", "--format", "json").stdout)
    assert document["roots"] == ["saved_dataset:ranking_train"]
    assert document["direction"] == "upstream"
    ids = {n["id"] for n in document["nodes"]}
    assert {"feature_view:driver_stats@1", "feature_view:customer_profile@1"} <= ids
    assert {(e["source"], e["target"], e["relation"]) for e in document["edges"]} >= {
        ("feature_view:driver_stats@1", "saved_dataset:ranking_train", "used_by")
    }

    dot = run_cli(repo, "driver_stats", "--format", "dot").stdout
    assert dot.startswith("digraph lineage {")
    assert dot.rstrip().endswith("}")
    assert '"feature_view:driver_stats@1" -> "feature_service:ranking@1" [label="part_of"];' in dot
    assert (
        '"feature_view:driver_stats@1" [label="feature view driver_stats v1", shape=box, style=bold];'
        in dot
    )

    both = run_cli(repo, "driver_stats").stdout
    assert "feature view driver_stats v1  (upstream)" in both
    assert "feature view driver_stats v1  (downstream)" in both

    missing = run_cli(repo, "nothing", expect=1)
    assert "Error: no lineage node named 'nothing'" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.slow
def test_cli_names_every_node_a_name_stands_for(store: FeatureStore) -> None:
    # A view called like the entity it is keyed by.
    customer = FeatureView(
        name="customer",
        entities=[CUSTOMER],
        schema=[Field(name="age", dtype=Int64)],
        source=FileSource(path="data/customers.parquet"),
    )
    store.apply([customer])
    text = run_cli(store.repo_path, "customer", "--downstream").stdout
    assert text.startswith("'customer' names 2 nodes (entity customer, feature view customer v1)")
    assert "entity customer  (downstream)" in text
    assert "feature view customer v1  (downstream)" in text
    only = run_cli(store.repo_path, "customer", "--kind", "entity", "--format", "json").stdout
    assert json.loads(only)["roots"] == ["entity:customer"]


# -- GET /v1/lineage/{name} ----------------------------------------------------------------------


def test_rest_endpoint_through_the_real_server(store: FeatureStore) -> None:
    store.get_historical_features(entity_frame(), "ranking").save_dataset("ranking_train")
    with Server(store) as server:
        answer = httpx.get(
            f"{server.url}/v1/lineage/{SOURCE}", params={"direction": "downstream"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["roots"] == [f"source:{SOURCE}"]
        assert body["direction"] == "downstream"
        assert "saved_dataset:ranking_train" in {n["id"] for n in body["nodes"]}
        assert body == store.lineage.graph.trace(SOURCE, "downstream").to_dict()

        both = httpx.get(f"{server.url}/v1/lineage/ranking_train", timeout=10).json()
        assert both["direction"] == "both"
        assert "feature_view:driver_stats@1" in {n["id"] for n in both["nodes"]}

        missing = httpx.get(f"{server.url}/v1/lineage/nothing", timeout=10)
        assert missing.status_code == 404
        assert "no lineage node named 'nothing'" in missing.json()["error"]["message"]
        bad = httpx.get(
            f"{server.url}/v1/lineage/driver_stats", params={"direction": "sideways"}, timeout=10
        )
        assert bad.status_code == 422
        kind = httpx.get(
            f"{server.url}/v1/lineage/driver_stats", params={"kind": "table"}, timeout=10
        )
        assert kind.status_code == 422
        assert "unknown node kind 'table'" in kind.text
