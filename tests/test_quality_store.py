"""Validation through the facade, with real Great Expectations suites, real DuckDB and the real
online stores: a strict suite rejects a bad batch on materialize and on push with nothing
written; warn mode writes and records; the history is queryable.

Every test runs on the embedded SQLite online store and on Redis (127.0.0.1:6379, database 6,
a project of its own per test, torn down afterwards).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import require_redis

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource
from featurestore.errors import ValidationFailedError
from featurestore.governance.lineage import LineageNode
from featurestore.materialize import Materializer
from featurestore.quality.expectations import load_great_expectations
from featurestore.quality.reporting import no_audit
from featurestore.quality.validation import Validation
from featurestore.types import Float32, Int64, String

T0 = datetime(2026, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
REDIS_URL = os.environ.get("FEATURESTORE_TEST_QUALITY_REDIS_URL", "redis://127.0.0.1:6379/6")
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
FEATURES = ["driver_stats:rate", "driver_stats:trips", "driver_stats:label"]
# Imported as the store does (it silences the import's DeprecationWarnings).
gx = load_great_expectations("the quality tests")


def suite() -> Any:
    """Rates are shares; labels come from a known set."""
    return gx.ExpectationSuite(
        name="driver_stats_suite",
        expectations=[
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="rate", min_value=0.0, max_value=1.0
            ),
            gx.expectations.ExpectColumnValuesToBeInSet(column="label", value_set=["a", "b", "c"]),
        ],
    )


def stats_view(mode: str, source: FileSource | PushSource) -> FeatureView:
    return FeatureView(
        name="driver_stats",
        entities=[DRIVER],
        ttl=2 * H,
        schema=[
            Field(name="rate", dtype=Float32),
            Field(name="trips", dtype=Int64),
            Field(name="label", dtype=String),
        ],
        source=source,
        validation=Validation(suite(), mode=mode),
    )


def rows(*items: tuple[int, datetime, float, int, str]) -> pd.DataFrame:
    """Rows ``(driver_id, event_timestamp, rate, trips, label)``."""
    return pd.DataFrame(
        {
            "driver_id": pd.array([r[0] for r in items], dtype="int64"),
            "event_timestamp": [r[1] for r in items],
            "created": [r[1] for r in items],
            "rate": pd.array([r[2] for r in items], dtype="float32"),
            "trips": pd.array([r[3] for r in items], dtype="int64"),
            "label": [r[4] for r in items],
        }
    )


GOOD = rows((1, T0, 0.5, 10, "a"), (2, T0 + H, 0.25, 20, "b"))
BAD = rows((1, T0, 0.5, 10, "a"), (2, T0 + H, 7.5, 20, "zz"), (3, T0 + H, 0.1, 5, "c"))


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require_redis(REDIS_URL)
    return str(request.param)


@pytest.fixture
def repo(tmp_path: Path, backend: str) -> Iterator[Path]:
    (tmp_path / "data").mkdir()
    online = (
        f"{{type: sqlite, path: {tmp_path / 'online.db'}, expiry_grace: 3650d}}"
        if backend == "sqlite"
        else f"{{type: redis, url: '{REDIS_URL}', expiry_grace: 3650d}}"
    )
    (tmp_path / "featurestore.yaml").write_text(
        f"project: quality_{uuid.uuid4().hex[:10]}\n"
        f"registry: sqlite:///{tmp_path / 'registry.db'}\n"
        f"online_store: {online}\n"
    )
    yield tmp_path
    with FeatureStore(tmp_path) as store:
        store.teardown()


def open_store(repo: Path, view: FeatureView, data: pd.DataFrame) -> FeatureStore:
    data.to_parquet(repo / "data" / "stats.parquet")
    store = FeatureStore(repo)
    store.apply([DRIVER, view])
    return store


def online_values(store: FeatureStore, *drivers: int) -> dict[str, list[Any]]:
    response = store.get_online_features(
        FEATURES, entity_rows=[{"driver_id": d} for d in drivers], as_of=T0 + 2 * H
    )
    return response.to_dict()


FILE = FileSource(path="data/stats.parquet", created_timestamp_column="created")
PUSH = PushSource(name="stats_push", batch_source=FILE)


# -- materialize -----------------------------------------------------------------------------------


def test_a_strict_suite_rejects_a_bad_materialization_and_writes_nothing(repo: Path) -> None:
    with open_store(repo, stats_view("strict", FILE), BAD) as store:
        with pytest.raises(ValidationFailedError) as raised:
            store.materialize(T0 - H, T0 + H, progress=False)
        message = str(raised.value)
        # The failed expectations, each with sample values.
        assert "expect_column_values_to_be_between" in message
        assert "7.5" in message
        assert "expect_column_values_to_be_in_set" in message
        assert "zz" in message
        assert online_values(store, 1, 2, 3)["rate"] == [None, None, None]
        version = store.registry.current_version(store.project, "feature_view", "driver_stats")
        assert (
            store.registry.get_watermark(
                store.project, "driver_stats", version, online_store=store.online.identity
            )
            is None
        )
        [result] = store.validation_history("driver_stats")
        assert (result.trigger, result.mode, result.success, result.rows) == (
            "materialize",
            "strict",
            False,
            3,
        )
        failed = {c.check: c for c in result.failures}
        assert failed["expect_column_values_to_be_between"].observed["unexpected_count"] == 1
        assert failed["expect_column_values_to_be_between"].samples == [7.5]


def test_a_strict_suite_lets_a_good_materialization_through(repo: Path) -> None:
    with open_store(repo, stats_view("strict", FILE), GOOD) as store:
        report = store.materialize(T0 - H, T0 + H, progress=False)
        assert report.views[0].written == 2
        assert "passed" in report.views[0].validation or "0 of" in report.views[0].validation
        assert online_values(store, 1, 2)["rate"] == [0.5, 0.25]
        [result] = store.validation_history("driver_stats")
        assert (result.success, result.trigger) == (True, "materialize")


def test_warn_mode_writes_a_bad_materialization_and_records_the_failure(repo: Path) -> None:
    with open_store(repo, stats_view("warn", FILE), BAD) as store:
        report = store.materialize(T0 - H, T0 + H, progress=False)
        assert report.views[0].written == 3
        assert online_values(store, 1, 2, 3)["rate"] == [0.5, 7.5, pytest.approx(0.1)]
        [result] = store.validation_history("driver_stats")
        assert (result.mode, result.success) == ("warn", False)
        assert {c.check for c in result.failures} == {
            "expect_column_values_to_be_between",
            "expect_column_values_to_be_in_set",
        }


# -- push ------------------------------------------------------------------------------------------


def pushed(*items: tuple[int, datetime, float, int, str]) -> dict[str, list[Any]]:
    frame = rows(*items).drop(columns=["created"])
    return {c: frame[c].tolist() for c in frame.columns}


def test_a_strict_suite_rejects_a_bad_push_with_nothing_written(repo: Path) -> None:
    with open_store(repo, stats_view("strict", PUSH), GOOD) as store:
        bad = pushed((1, T0 + H, 0.5, 11, "a"), (4, T0 + H, -2.0, 12, "b"))
        with pytest.raises(ValidationFailedError, match=r"-2\.0"):
            store.push("stats_push", bad, to="online_and_offline")
        assert online_values(store, 1, 4)["rate"] == [None, None]
        assert not (store.config.data_dir / store.project).exists() or not [
            p for p in (store.config.data_dir / store.project).rglob("*") if p.is_file()
        ]
        [result] = store.validation_history("driver_stats", trigger="push")
        assert (result.success, result.rows, result.mode) == (False, 2, "strict")
        # A good push goes through.
        store.push("stats_push", pushed((4, T0 + H, 0.75, 12, "b")), to="online_and_offline")
        assert online_values(store, 4)["rate"] == [0.75]
        assert [r.success for r in store.validation_history("driver_stats")] == [False, True]


def test_warn_mode_writes_a_bad_push_and_records_it(repo: Path) -> None:
    with open_store(repo, stats_view("warn", PUSH), GOOD) as store:
        report = store.push("stats_push", pushed((4, T0 + H, 3.0, 12, "q")))
        assert report.online[0].result.written == 1
        assert online_values(store, 4)["rate"] == [3.0]
        [result] = store.validation_history("driver_stats")
        assert (result.trigger, result.success) == ("push", False)


def test_passing_pushes_are_recorded_together_and_failures_one_by_one(repo: Path) -> None:
    with open_store(repo, stats_view("warn", PUSH), GOOD) as store:
        for driver in range(10, 15):
            store.push(
                "stats_push", pushed((driver, T0 + H, 0.5, 1, "a"), (driver + 100, T0, 0.2, 2, "b"))
            )
        store.push("stats_push", pushed((7, T0 + H, 9.0, 1, "a")))
        store.push("stats_push", pushed((8, T0 + H, 0.5, 1, "c")))
        history = store.validation_history("driver_stats", trigger="push")
        failed = [r for r in history if not r.success]
        passed = [r for r in history if r.success]
        assert [(r.rows, r.count) for r in failed] == [(1, 1)]
        assert [(r.rows, r.count) for r in passed] == [(11, 6)]
        null_rate = next(c for c in passed[0].checks if c.check == "null_rate")
        assert null_rate.observed["element_count"] == 11
        between = next(
            c for c in passed[0].checks if c.check == "expect_column_values_to_be_between"
        )
        assert between.observed["element_count"] == 11
        assert "in 6 batches" in passed[0].summary()
        # Only the failure is in the audit log (each push has its own row there).
        assert [r.outcome for r in store.audit_log(action="validate")] == ["failed"]
        assert len(store.audit_log(action="push")) == 7


# -- on demand, history, lineage, audit ------------------------------------------------------------


def test_validate_on_demand_by_window_and_the_history(repo: Path) -> None:
    with open_store(repo, stats_view("strict", FILE), BAD) as store:
        whole = store.validate("driver_stats")
        assert (whole.trigger, whole.success, whole.rows) == ("on_demand", False, 3)
        first_hour = store.validate("driver_stats", T0 - H, T0)
        assert (first_hour.success, first_hour.rows) == (True, 1)
        assert (first_hour.window_start, first_hour.window_end) == (T0 - H, T0)
        history = store.validation_history("driver_stats")
        assert [r.id for r in history] == sorted(r.id for r in history)
        assert [r.success for r in history] == [False, True]
        assert [r.id for r in store.validation_history("driver_stats", failed_only=True)] == [
            whole.id
        ]
        assert [r.id for r in store.validation_history("driver_stats", limit=1)] == [first_hour.id]


def test_validations_show_in_lineage_and_audit(repo: Path) -> None:
    with open_store(repo, stats_view("strict", FILE), BAD) as store:
        with pytest.raises(ValidationFailedError):
            store.materialize(T0 - H, T0 + H, progress=False)
        [result] = store.validation_history("driver_stats")
        traced = store.trace_lineage("driver_stats", "downstream", kind="feature_view")
        [edge] = [e for e in traced.edges if e.relation == "validated_by"]
        assert edge.target == LineageNode("validation", f"driver_stats#{result.id}")
        assert edge.detail["success"] is False
        assert "expect_column_values_to_be_between(rate)" in edge.detail["failed"]
        [record] = store.audit_log(action="validate")
        assert (record.outcome, record.resource) == ("rejected", "feature_view:driver_stats")


def test_a_suite_file_in_the_repository_is_stored_with_the_view(repo: Path) -> None:
    (repo / "expectations").mkdir()
    (repo / "expectations" / "stats.json").write_text(json.dumps(suite().to_json_dict()))
    view = stats_view("strict", FILE)
    view.validation = Validation("expectations/stats.json", mode="strict")
    with open_store(repo, view, BAD) as store:
        stored = store.get_feature_view("driver_stats").validation
        assert stored is not None
        assert stored.suite_file == "expectations/stats.json"
        assert stored.suite_name == "driver_stats_suite"
        with pytest.raises(ValidationFailedError, match=r"7\.5"):
            store.materialize(T0 - H, T0 + H, progress=False)


def test_quick_checks_run_without_a_suite(repo: Path) -> None:
    view = stats_view("warn", FILE)
    view.validation = None
    nulls = rows((1, T0, 0.5, 10, "a"), (2, T0, 0.5, 10, "b"), (3, T0, 0.5, 10, "c"))
    nulls["rate"] = pd.array([None, None, 0.5], dtype="float32")
    with open_store(repo, view, nulls) as store:
        store.materialize(T0 - H, T0 + H, progress=False)
        [result] = store.validation_history("driver_stats")
        assert (result.mode, result.suite) == ("warn", None)
        [failed] = result.failures
        assert (failed.check, failed.column) == ("null_rate", "rate")


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "exit_code"), [("strict", 3), ("warn", 0)])
def test_without_great_expectations_the_command_says_what_to_install(
    tmp_path: Path, mode: str, exit_code: int
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "featurestore.yaml").write_text(
        f"project: nogx\nonline_store: {{type: sqlite, path: {tmp_path / 'online.db'}}}\n"
    )
    with open_store(tmp_path, stats_view(mode, FILE), GOOD):
        pass
    # The package is made unimportable in the child, as on a machine without the extra.
    script = (
        "import sys; sys.modules['great_expectations'] = None\n"
        "from featurestore.cli import main\n"
        f"main(['--repo', {str(tmp_path)!r}, 'validate', 'driver_stats'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == exit_code, (done.stdout, done.stderr)
    assert "pip install 'featurestore[quality]'" in done.stdout
    with FeatureStore(tmp_path) as store:
        [result] = store.validation_history("driver_stats")
        assert "not installed" in (result.skipped or "")


@pytest.mark.postgres
def test_quality_history_on_a_postgres_registry(tmp_path: Path, postgres_url: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "featurestore.yaml").write_text(
        f"project: pgquality\nregistry: '{postgres_url}'\n"
        f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}, expiry_grace: 3650d}}\n"
    )
    with open_store(tmp_path, stats_view("strict", FILE), BAD) as store:
        with pytest.raises(ValidationFailedError):
            store.materialize(T0 - H, T0 + H, progress=False)
        store.validate("driver_stats", T0 - H, T0)
        first = store.statistics("driver_stats", T0 - H, T0)
        store.drift("driver_stats", reference_window=(T0 - H, T0), current_window=(T0 - H, T0 + H))
        history = store.validation_history("driver_stats")
        assert [(r.trigger, r.success) for r in history] == [
            ("materialize", False),
            ("on_demand", True),
        ]
        assert history[0].failures[0].samples == [7.5]
        recorded = store.statistics_history("driver_stats")
        assert recorded[0].id == first.id
        assert recorded[0].profile == first.profile
        [report] = store.drift_history("driver_stats")
        assert report["view"] == "driver_stats"


def test_a_strict_run_over_many_batches_writes_none_of_them(repo: Path) -> None:
    """The failing row comes in the last of three batches: the first two were spooled, not
    written, and nothing is left in the temporary directory."""
    spool = repo / "duckdb_tmp"
    config = (repo / "featurestore.yaml").read_text()
    (repo / "featurestore.yaml").write_text(
        config + f"offline_store: {{type: duckdb, temp_directory: {spool}}}\n"
    )
    data = rows((1, T0, 0.5, 10, "a"), (2, T0, 0.25, 20, "b"), (3, T0, 4.0, 30, "c"))
    with open_store(repo, stats_view("strict", FILE), data) as store:
        materializer = Materializer(
            project=store.project,
            registry=store.registry,
            offline=store.offline,
            online=store.online,
            progress=False,
            batch_rows=1,
            validation=store.quality.materialization(no_audit),
            spool_dir=spool,
        )
        with pytest.raises(ValidationFailedError, match=r"4\.0"):
            materializer.materialize(T0 - H, T0 + H)
        assert online_values(store, 1, 2, 3)["rate"] == [None, None, None]
        assert [p.name for p in spool.iterdir() if p.name.startswith("featurestore-spool")] == []
        [result] = store.validation_history("driver_stats")
        assert (result.rows, result.success) == (3, False)
        # The same run over valid rows writes every batch.
        rows((1, T0, 0.5, 10, "a"), (2, T0, 0.25, 20, "b"), (3, T0, 0.4, 30, "c")).to_parquet(
            repo / "data" / "stats.parquet"
        )
        report = materializer.materialize(T0 - H, T0 + H)
        assert report.views[0].written == 3
        assert online_values(store, 1, 2, 3)["rate"] == [0.5, 0.25, pytest.approx(0.4)]


def test_validate_reads_a_view_with_a_feature_called_event_timestamp(repo: Path) -> None:
    """The window's event time is named after the source's timestamp field, never a feature."""
    odd = FeatureView(
        name="odd",
        entities=[DRIVER],
        schema=[Field(name="event_timestamp", dtype=Float32)],
        source=FileSource(path="data/odd.parquet", timestamp_field="ts"),
    )
    pd.DataFrame(
        {
            "driver_id": pd.array([1, 2], dtype="int64"),
            "ts": [T0, T0 + H],
            "event_timestamp": pd.array([0.5, None], dtype="float32"),
        }
    ).to_parquet(repo / "data" / "odd.parquet")
    with open_store(repo, odd, GOOD) as store:
        result = store.validate("odd", T0, T0 + H)
        null_rate = next(c for c in result.checks if c.check == "null_rate")
        assert (result.rows, null_rate.column, null_rate.observed["null_count"]) == (
            2,
            "event_timestamp",
            1,
        )


def test_push_flush_seconds_zero_records_every_push(repo: Path) -> None:
    config = (repo / "featurestore.yaml").read_text()
    (repo / "featurestore.yaml").write_text(config + "quality: {push_flush_seconds: 0}\n")
    with open_store(repo, stats_view("warn", PUSH), GOOD) as store:
        store.push("stats_push", pushed((4, T0 + H, 0.5, 1, "a")))
        store.push("stats_push", pushed((5, T0 + H, 0.5, 1, "b")))
        assert [(r.count, r.rows) for r in store.validation_history("driver_stats")] == [
            (1, 1),
            (1, 1),
        ]
