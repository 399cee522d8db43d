"""OpenLineage events: every event validates against the OpenLineage JSON schemas
(tests/openlineage_spec.py) and names the right inputs and outputs, one job per view.

The repository is the REST tests' one (tests/api_server.py) with a ``lineage`` section; SQLite
registry and online store in tmp_path. The HTTP transport posts to a server of the test's own on
127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from api_server import NOW, free_port, make_repo
from openlineage_spec import validate_event

from featurestore import FeatureStore, FeatureView, Field, FileSource, load_config
from featurestore.config import parse_config
from featurestore.errors import ConfigError, FeatureStoreError
from featurestore.governance.openlineage import DatasetRef, FieldRef, open_emitter
from featurestore.governance.openlineage_client import PRODUCER
from featurestore.types import Float32

SQLITE_ONLINE = "{type: sqlite, path: data/online.db, expiry_grace: 36500d}"
EVENTS = "lineage/events.jsonl"
FILE_LINEAGE = f"lineage: {{openlineage: {{transport: file, path: {EVENTS}}}}}\n"


def read_events(store: FeatureStore) -> list[dict[str, Any]]:
    path = store.repo_path / EVENTS
    return [json.loads(line) for line in path.read_text().splitlines()]


def runs_of(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Events by run id, in order; each run is START then COMPLETE or FAIL."""
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        runs[event["run"]["runId"]].append(event)
    for run in runs.values():
        assert next(e["eventType"] for e in run) == "START"
        assert [e["eventType"] for e in run][1:] in (["COMPLETE"], ["FAIL"])
        assert len({e["job"]["name"] for e in run}) == 1
    return runs


def job_runs(events: list[dict[str, Any]], job: str) -> list[list[dict[str, Any]]]:
    return [run for run in runs_of(events).values() if run[0]["job"]["name"] == job]


def names(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def fields(dataset: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["type"] for f in dataset["facets"]["schema"]["fields"]}


def lineage_of(dataset: dict[str, Any]) -> dict[str, list[tuple[str, str, str]]]:
    facet = dataset["facets"]["columnLineage"]["fields"]
    return {
        out: [(i["namespace"], i["name"], i["field"]) for i in spec["inputFields"]]
        for out, spec in facet.items()
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    opened = make_repo(tmp_path / "repo", SQLITE_ONLINE, FILE_LINEAGE)
    try:
        yield opened
    finally:
        opened.close()


def entity_frame() -> pd.DataFrame:
    return pd.DataFrame({"driver_id": [1, 2], "customer_id": [7, 8], "event_timestamp": [NOW, NOW]})


def pushed_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": pd.Series([1], dtype="int64"),
            "event_timestamp": [NOW],
            "created": [NOW],
            "conv_rate": pd.Series([0.7], dtype="float32"),
            "acc_rate": pd.Series([0.5], dtype="float32"),
            "trips": pd.Series([3], dtype="int64"),
        }
    )


# -- the file transport: spec-valid, the right datasets per job ----------------------------------


def test_every_event_is_a_valid_run_event(store: FeatureStore) -> None:
    store.push("driver_stats_push", pushed_rows(), to="offline")
    store.get_historical_features(entity_frame(), "ranking").save_dataset("train")
    (store.repo_path / "data" / "customers.parquet").unlink()
    with pytest.raises(FeatureStoreError, match=r"customers\.parquet"):
        store.materialize(NOW - timedelta(days=1), NOW, ["customer_profile"], progress=False)
    events = read_events(store)
    assert len(events) >= 14
    for event in events:
        validate_event(event, PRODUCER)
        assert event["producer"] == PRODUCER
    jobs = {e["job"]["name"] for e in events}
    project = store.project
    assert jobs == {
        f"{project}.apply.driver_stats",
        f"{project}.apply.customer_profile",
        f"{project}.materialize.driver_stats",
        f"{project}.materialize.customer_profile",
        f"{project}.push.driver_stats_push",
        f"{project}.save_dataset.train",
        # The quality layer's runs: materialized and pushed rows are validated, and a saved
        # dataset's statistics recorded (tests/test_quality_drift.py checks their facets).
        f"{project}.validate.driver_stats",
        f"{project}.validate.customer_profile",
        f"{project}.statistics.train",
    }
    assert {e["job"]["namespace"] for e in events} == {"featurestore"}
    failed = [run for run in runs_of(events).values() if run[-1]["eventType"] == "FAIL"]
    assert [run[0]["job"]["name"] for run in failed] == [f"{project}.materialize.customer_profile"]
    error = failed[0][-1]["run"]["facets"]["errorMessage"]
    assert error["programmingLanguage"] == "PYTHON"
    assert "customers.parquet" in error["message"]


def test_apply_reports_each_view_from_its_source(store: FeatureStore) -> None:
    events = read_events(store)
    project, repo = store.project, store.repo_path
    [run] = job_runs(events, f"{project}.apply.driver_stats")
    start, complete = run
    assert complete["job"]["facets"]["jobType"]["jobType"] == "APPLY"
    assert names(complete["inputs"]) == [("file", str(repo / "data" / "driver_stats.parquet"))]
    assert fields(complete["inputs"][0])["conv_rate"] == "float"
    [output] = complete["outputs"]
    assert (output["namespace"], output["name"]) == (
        f"featurestore://{project}",
        "feature_view.driver_stats",
    )
    assert output["facets"]["version"]["datasetVersion"] == "1"
    assert fields(output) == {
        "driver_id": "Int64",
        "conv_rate": "Float32",
        "acc_rate": "Float32",
        "trips": "Int64",
    }
    source = str(repo / "data" / "driver_stats.parquet")
    assert lineage_of(output)["conv_rate"] == [("file", source, "conv_rate")]
    assert names(start["outputs"]) == names(complete["outputs"])


def test_field_mapping_shows_in_column_lineage(store: FeatureStore) -> None:
    path = store.repo_path / "data" / "mapped.parquet"
    pd.DataFrame(
        {
            "driver_id": pd.Series([1], dtype="int64"),
            "event_timestamp": [NOW],
            "conv": pd.Series([0.5], dtype="float32"),
        }
    ).to_parquet(path)
    view = FeatureView(
        name="mapped",
        schema=[Field(name="conv_rate", dtype=Float32)],
        source=FileSource(path="data/mapped.parquet", field_mapping={"conv": "conv_rate"}),
    )
    store.apply([view])
    store.apply([view])  # unchanged: no second apply run
    [run] = job_runs(read_events(store), f"{store.project}.apply.mapped")
    [output] = run[-1]["outputs"]
    assert lineage_of(output) == {"conv_rate": [("file", str(path), "conv")]}


def test_materialize_reports_one_job_per_view(store: FeatureStore) -> None:
    events = read_events(store)
    project, repo = store.project, store.repo_path
    expected = {
        "driver_stats": ("driver_stats.parquet", 4),
        "customer_profile": ("customers.parquet", 2),
    }
    for view, (source, keys) in expected.items():
        [run] = job_runs(events, f"{project}.materialize.{view}")
        start, complete = run
        assert names(complete["inputs"]) == [("file", str(repo / "data" / source))]
        [output] = complete["outputs"]
        assert (output["namespace"], output["name"]) == (
            f"featurestore://{project}",
            f"online_store.{view}",
        )
        assert output["facets"]["version"]["datasetVersion"] == "1"
        assert output["outputFacets"]["outputStatistics"]["rowCount"] <= keys
        assert "outputFacets" not in start["outputs"][0] or not start["outputs"][0]["outputFacets"]
        nominal = complete["run"]["facets"]["nominalTime"]
        assert nominal["nominalEndTime"] == NOW.isoformat()
        assert nominal["nominalStartTime"] == (NOW - timedelta(days=1)).isoformat()


def test_push_and_saved_dataset_jobs(store: FeatureStore) -> None:
    store.push("driver_stats_push", pushed_rows(), to="online")  # online only: no event
    store.push("driver_stats_push", pushed_rows(), to="offline")
    saved = store.get_historical_features(entity_frame(), "ranking").save_dataset("train")
    events = read_events(store)
    project = store.project
    [push] = job_runs(events, f"{project}.push.driver_stats_push")
    folder = store.config.data_dir / project / "push" / "driver_stats_push"
    assert names(push[-1]["inputs"]) == [
        (f"featurestore://{project}", "push_source.driver_stats_push")
    ]
    assert names(push[-1]["outputs"]) == [("file", str(folder))]
    assert push[-1]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 1

    [save] = job_runs(events, f"{project}.save_dataset.train")
    complete = save[-1]
    assert complete["job"]["facets"]["jobType"]["jobType"] == "SAVE_DATASET"
    assert names(complete["inputs"]) == [
        (f"featurestore://{project}", "feature_view.driver_stats"),
        (f"featurestore://{project}", "feature_view.customer_profile"),
    ]
    assert [i["facets"]["version"]["datasetVersion"] for i in complete["inputs"]] == ["1", "1"]
    [output] = complete["outputs"]
    assert (output["namespace"], output["name"]) == ("file", saved.location)
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 2
    assert lineage_of(output)["tier"] == [
        (f"featurestore://{project}", "feature_view.customer_profile", "tier")
    ]
    assert set(fields(output)) == set(saved.columns)


def test_emit_run_reports_runs_of_other_layers(store: FeatureStore) -> None:
    emitter = store.lineage.emitter
    data = DatasetRef(namespace="file", name="/srv/data.parquet", fields=(("driver_id", "int64"),))
    erased = DatasetRef(
        namespace="file",
        name="/srv/data.parquet",
        fields=(("driver_id", "int64"),),
        column_lineage={"driver_id": (FieldRef("file", "/srv/data.parquet", "driver_id"),)},
        rows=3,
    )
    ok = emitter.emit_run("demo.erase.driver", [data], [erased], job_type="ERASE")
    failed = emitter.emit_run("demo.retention.x", [data], [], error=RuntimeError("no disk"))
    runs = runs_of(read_events(store))
    assert [e["eventType"] for e in runs[ok]] == ["START", "COMPLETE"]
    assert [e["eventType"] for e in runs[failed]] == ["START", "FAIL"]
    for event in runs[ok] + runs[failed]:
        validate_event(event, PRODUCER)


# -- other transports, failures, configuration --------------------------------------------------


def test_without_a_lineage_section_nothing_is_emitted(tmp_path: Path) -> None:
    store = make_repo(tmp_path / "repo", SQLITE_ONLINE)
    try:
        store.get_historical_features(entity_frame(), "ranking").save_dataset("train")
        assert store.lineage.emitter.enabled is False
        assert not (store.repo_path / "lineage").exists()
    finally:
        store.close()
    # The openlineage package is not even imported.
    code = (
        "import sys; from featurestore import FeatureStore; "
        f"s = FeatureStore(repo_path={str(tmp_path / 'repo')!r}); s.lineage; s.close(); "
        "print('openlineage' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_missing_package_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "featurestore.yaml").write_text(f"project: demo\n{FILE_LINEAGE}")
    monkeypatch.setattr("featurestore.config_sections._module_available", lambda name: False)
    with pytest.raises(ConfigError, match=r"pip install 'featurestore\[lineage\]'"):
        load_config(tmp_path)
    monkeypatch.undo()
    config = load_config(tmp_path)
    # Past the config check (the package went away later): the emitter says the same.
    for module in [m for m in sys.modules if m.split(".")[0] == "openlineage"]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delitem(sys.modules, "featurestore.governance.openlineage_client")
    with pytest.raises(ConfigError, match=r"pip install 'featurestore\[lineage\]'"):
        open_emitter(config)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("lineage: [openlineage]", "'lineage' must be a mapping"),
        ("lineage: {openlineage: {}, graph: true}", r"unknown lineage setting\(s\) \['graph'\]"),
        (
            "lineage: {openlineage: {transport: kafka}}",
            "transport must be .file., .http. or .console., got .kafka.",
        ),
        ("lineage: {openlineage: {transport: file}}", "transport file needs 'path'"),
        ("lineage: {openlineage: {transport: http, url: marquez}}", "needs 'url', an http"),
        (
            "lineage: {openlineage: {transport: http, url: 'http://m', timeout: 0}}",
            "timeout must be a positive number",
        ),
        (
            "lineage: {openlineage: {transport: console, path: x}}",
            r"unknown setting\(s\) \['path'\] for transport console",
        ),
        ("lineage: {openlineage: {transport: console, namespace: ''}}", "namespace must be"),
    ],
)
def test_bad_lineage_settings_are_named(tmp_path: Path, section: str, message: str) -> None:
    import yaml

    raw = yaml.safe_load(f"project: demo\n{section}\n")
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, tmp_path)


def test_console_transport_prints_events(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    store = make_repo(
        tmp_path / "repo", SQLITE_ONLINE, "lineage: {openlineage: {transport: console}}\n"
    )
    store.close()
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    events = [json.loads(line) for line in lines]
    # apply, materialize and the materialization's validation of two views, START and COMPLETE
    assert len(events) == 12
    for event in events:
        validate_event(event, PRODUCER)


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers.get("Authorization", ""), json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_http_transport_posts_events_with_the_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OL_TEST_KEY", "s3cret")
    section = (
        "lineage: {openlineage: {transport: http, "
        f"url: 'http://127.0.0.1:{server.server_port}', "
        "endpoint: api/v1/lineage, api_key: '${OL_TEST_KEY}', timeout: 2}}\n"
    )
    try:
        make_repo(tmp_path / "repo", SQLITE_ONLINE, section).close()
    finally:
        server.shutdown()
        server.server_close()
    assert len(Collector.received) == 12  # as with the console transport
    for path, auth, event in Collector.received:
        assert path == "/api/v1/lineage"
        assert auth == "Bearer s3cret"
        validate_event(event, PRODUCER)


def test_a_dead_server_never_fails_the_operation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    section = (
        "lineage: {openlineage: {transport: http, "
        f"url: 'http://127.0.0.1:{free_port()}', timeout: 1}}}}\n"
    )
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="featurestore.lineage"):
        store = make_repo(tmp_path / "repo", SQLITE_ONLINE, section)
    try:
        assert time.monotonic() - began < 20
        saved = store.get_historical_features(entity_frame(), "ranking").save_dataset("train")
        assert saved.rows == 2
        emitter = store.lineage.emitter
        assert len(emitter.failures) == 1  # then it pauses, instead of waiting on every event
        assert "OpenLineage START" in emitter.failures[0]
        assert any("not sent" in r.getMessage() for r in caplog.records)
        assert store.get_saved_dataset("train").rows == 2
    finally:
        store.close()


def test_emission_resumes_after_the_pause(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    emitter = store.lineage.emitter
    sent = len(read_events(store))

    def down(*args: Any) -> None:
        raise ConnectionError("down")

    monkeypatch.setattr(emitter, "_emit", down)
    emitter.emit_run("demo.x", [], [])
    monkeypatch.undo()
    emitter.emit_run("demo.y", [], [])  # paused: dropped
    assert len(read_events(store)) == sent
    emitter._paused_until = 0.0  # as PAUSE_SECONDS later
    emitter.emit_run("demo.z", [], [])
    assert len(read_events(store)) == sent + 2
