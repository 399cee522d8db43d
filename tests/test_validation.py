"""Validation: Validation definitions, quick checks and real Great Expectations suites, merged
batch by batch into results that round-trip through JSON."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from featurestore.definitions import Entity, FeatureView, Field, FileSource
from featurestore.errors import (
    ConfigError,
    DefinitionError,
    QualityError,
    ValidationFailedError,
)
from featurestore.quality.expectations import SuiteRunner, load_great_expectations
from featurestore.quality.result import ValidationResult, json_safe
from featurestore.quality.validation import Validation
from featurestore.quality.validator import QualityDefaults, ViewValidator
from featurestore.types import Float32, Int64, String

SUITE_FILE = Path(__file__).parent / "expectations" / "driver_stats.json"
SUITE: dict[str, Any] = json.loads(SUITE_FILE.read_text())
DEFAULTS = QualityDefaults()
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)


def make_view(validation: Validation | None = None) -> FeatureView:
    return FeatureView(
        name="driver_stats",
        entities=[DRIVER],
        ttl=timedelta(hours=2),
        schema=[
            Field(name="conv_rate", dtype=Float32),
            Field(name="trips", dtype=Int64),
            Field(name="city", dtype=String),
        ],
        source=FileSource(path="data/driver_stats.parquet", created_timestamp_column="created"),
        validation=validation,
    )


def make_batch(
    conv_rate: list[float | None], trips: list[int] | None = None, city: list[str] | None = None
) -> pa.RecordBatch:
    """A batch as the materializer hands it over: keys and timestamps beside the features."""
    n = len(conv_rate)
    return pa.record_batch(
        {
            "driver_id": pa.array(range(n), pa.int64()),
            "event_timestamp": pa.array([0] * n, pa.int64()),
            "conv_rate": pa.array(conv_rate, pa.float32()),
            "trips": pa.array(trips if trips is not None else [1] * n, pa.int64()),
            "city": pa.array(city if city is not None else ["a"] * n, pa.string()),
        }
    )


def validate(view: FeatureView, *batches: pa.RecordBatch, trigger: str = "materialize") -> Any:
    validator = ViewValidator(view, version=3, trigger=trigger, defaults=DEFAULTS)
    for batch in batches:
        validator.add(batch)
    return validator, validator.finish()


def by_check(result: ValidationResult, check: str, column: str | None = None) -> Any:
    [outcome] = [c for c in result.checks if c.check == check and c.column == column]
    return outcome


# --- Validation definitions -------------------------------------------------------------


def test_a_suite_declared_as_ge_object_dict_or_file_is_the_same_suite(tmp_path: Path) -> None:
    gx = load_great_expectations("this test")
    suite = gx.ExpectationSuite(
        name="driver_stats_suite",
        expectations=[
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="conv_rate", min_value=0, max_value=1
            ),
            gx.expectations.ExpectColumnValuesToBeInSet(column="city", value_set=["a", "b"]),
            gx.expectations.ExpectColumnMeanToBeBetween(column="trips", min_value=0, max_value=100),
        ],
    )
    (tmp_path / "expectations").mkdir()
    (tmp_path / "expectations" / "driver.json").write_text(SUITE_FILE.read_text())
    from_file = Validation("expectations/driver.json", mode="strict")
    assert from_file.suite_json is None
    assert from_file.suite_name is None
    resolved = from_file.resolve(tmp_path)
    assert resolved.suite_file == "expectations/driver.json"
    # GE's own serialization (ids, severity, version meta) is normalized away.
    assert Validation(suite).suite_json == Validation(SUITE).suite_json == resolved.suite_json
    assert resolved.suite_json == SUITE
    assert resolved.suite_name == "driver_stats_suite"
    assert Validation.from_dict(json.loads(json.dumps(resolved.to_dict()))) == resolved


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "loud"}, "mode must be 'strict'.*got 'loud'"),
        ({"max_null_rate": 1.5}, "max_null_rate must be a fraction between 0 and 1"),
        ({"max_null_rate": -0.1}, "max_null_rate must be a fraction"),
        ({"max_null_rate": True}, "max_null_rate must be a fraction"),
        ({"suite": 42}, "suite must be None, a great_expectations ExpectationSuite.*got int"),
        ({"suite": {"expectations": []}}, "needs a non-empty 'name'"),
        ({"suite": {"name": "s", "expectations": {}}}, "suite 's' needs an 'expectations' list"),
        ({"suite": {"name": "s", "expectations": [{"kwargs": {}}]}}, "expectation 0 has no 'type'"),
        (
            {"suite": {"name": "s", "expectations": [{"expectation_type": "x", "kwargs": {}}]}},
            "GE 0.x's 'expectation_type' is 'type'",
        ),
        (
            {"suite": {"name": "s", "expectations": [{"type": "expect_x", "kwargs": [1]}]}},
            r"expectation 0 \(expect_x\) needs a 'kwargs' object",
        ),
        (
            {"suite": {"name": "s", "expectations": [{"type": "expect_x", "kwargs": {}, "x": 1}]}},
            r"unknown keys \['x'\]",
        ),
        (
            {"suite": {"name": "s", "expectations": [{"type": "e", "kwargs": {"v": math.nan}}]}},
            "values must be plain JSON data",
        ),
    ],
)
def test_bad_validation_arguments_are_definition_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(DefinitionError, match=match):
        Validation(**kwargs)


def test_resolving_a_bad_suite_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match=r"suite file 'missing.json' not found \(looked for"):
        Validation("missing.json").resolve(tmp_path)
    (tmp_path / "broken.json").write_text('{"name": "s",')
    with pytest.raises(DefinitionError, match=r"'broken.json' is not valid JSON \(line 1"):
        Validation("broken.json").resolve(tmp_path)
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(
        DefinitionError, match=r"'list\.json': an expectation suite is a JSON object"
    ):
        Validation("list.json").resolve(tmp_path)


def test_a_view_round_trips_its_validation_as_metadata() -> None:
    plain = make_view()
    checked = make_view(Validation(SUITE, mode="strict", max_null_rate=0.25))
    assert "validation" not in plain.meta()
    assert checked.meta()["validation"]["suite"] == SUITE
    # Governance metadata: a new meta hash, but the same content hash, so no new version.
    assert checked.content_hash == plain.content_hash
    assert checked.meta_hash != plain.meta_hash
    rebuilt = FeatureView.from_dict(json.loads(json.dumps(checked.to_dict())))
    assert rebuilt == checked
    assert rebuilt.validation == checked.validation
    assert rebuilt.validation is not None
    assert rebuilt.validation.mode == "strict"


def test_a_view_without_validation_keeps_its_meta_hash() -> None:
    # The same view as tests/test_definitions.py's make_view(); its meta hash was recorded
    # before views could carry a validation.
    view = FeatureView(
        name="driver_stats",
        entities=[DRIVER],
        ttl=timedelta(hours=2),
        schema=[Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Int64)],
        source=FileSource(path="data/driver_stats.parquet", created_timestamp_column="created"),
        description="hourly stats",
        tags={"team": "ops"},
        owner="ops@example.com",
    )
    assert view.meta_hash == "0edd0523d7886ca5f045031204c3ac27b73a0cb5481fce7893a89b870988875f"


def test_a_suite_may_only_name_features_of_the_view() -> None:
    suite = {
        "name": "s",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "conv_rate"}},
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "driver_id"}},
        ],
    }
    with pytest.raises(
        DefinitionError,
        match=r"feature view 'driver_stats': expectation 1 \(expect_column_values_to_be_unique\) "
        r"of suite 's' names column 'driver_id', which is not a feature",
    ):
        make_view(Validation(suite))
    with pytest.raises(DefinitionError, match="validation must be a Validation or None, got dict"):
        make_view(SUITE)  # type: ignore[arg-type]


# --- Quick checks ------------------------------------------------------------------------


def test_quick_checks_catch_a_missing_column_a_wrong_type_and_nulls() -> None:
    batch = pa.record_batch(
        {
            "conv_rate": pa.array([0.5, None, math.nan, 0.1], pa.float64()),  # declared Float32
            "trips": pa.array([1, None, 3, 4], pa.int64()),
        }
    )
    view = make_view(Validation(max_null_rate=0.3))
    _, result = validate(view, batch)
    assert by_check(result, "schema", "city").observed == {"present": False}
    assert "city: column missing from the batch" in by_check(result, "schema", "city").message
    conv_type = by_check(result, "schema", "conv_rate")
    assert not conv_type.success
    assert conv_type.observed == {"present": True, "arrow_type": "double"}
    assert "values are Arrow double, but the view declares Float32 (float)" in conv_type.message
    assert by_check(result, "schema", "trips").success
    conv_nulls = by_check(result, "null_rate", "conv_rate")
    assert conv_nulls.observed == {
        "element_count": 4,
        "null_count": 2,
        "nan_count": 1,
        "null_rate": 0.5,
    }
    assert not conv_nulls.success
    assert conv_nulls.message == (
        "conv_rate: 2 of 4 values (50.0%) null, 1 of them NaN; at most 30.0% allowed"
    )
    assert by_check(result, "null_rate", "trips").success  # 25% <= 30%
    assert [c.column for c in result.checks if c.check == "null_rate"] == ["conv_rate", "trips"]
    assert not result.success
    assert result.suite is None
    assert result.skipped is None


def test_null_rate_limit_comes_from_the_view_else_the_defaults() -> None:
    batch = pa.Table.from_batches([make_batch([0.1, None]), make_batch([None, 0.4])])
    loose = ViewValidator(make_view(), version=None, trigger="push", defaults=DEFAULTS)
    strict_defaults = QualityDefaults(mode="strict", max_null_rate=0.1)
    tight = ViewValidator(make_view(), version=None, trigger="push", defaults=strict_defaults)
    overridden = ViewValidator(
        make_view(Validation(max_null_rate=0.5)),
        version=None,
        trigger="push",
        defaults=strict_defaults,
    )
    for validator in (loose, tight, overridden):
        validator.add(batch)
    assert loose.finish().success
    assert loose.mode == "warn"
    assert not tight.finish().success
    assert tight.mode == "strict"
    assert overridden.finish().success
    assert overridden.mode == "warn"


def test_zero_rows_pass_with_nothing_to_reject() -> None:
    empty = make_batch([]).slice(0, 0)
    validator, result = validate(make_view(Validation(SUITE, mode="strict")), empty)
    assert result.rows == 0
    assert result.checks == ()
    assert result.success
    assert result.summary() == (
        "driver_stats v3 (materialize, strict): no rows to validate, nothing to reject"
    )
    validator.check(result)  # no error


# --- Expectation suites ------------------------------------------------------------------

BAD_ROWS = make_batch([0.1, 2.0, 7.5, 0.3], trips=[1, 2, 3, 4], city=["a", "c", "a", "b"])


def test_strict_mode_rejects_a_failing_batch_listing_expectations_and_samples() -> None:
    validator, result = validate(
        make_view(Validation(SUITE, mode="strict")), BAD_ROWS, trigger="push"
    )
    assert result.suite == "driver_stats_suite"
    assert [(c.check, c.column) for c in result.failures] == [
        ("expect_column_values_to_be_between", "conv_rate"),
        ("expect_column_values_to_be_in_set", "city"),
    ]
    between = result.failures[0]
    assert between.samples == [2.0, 7.5]
    assert between.kwargs == {"column": "conv_rate", "min_value": 0, "max_value": 1}
    assert between.observed["unexpected_count"] == 2
    assert between.observed["element_count"] == 4
    with pytest.raises(ValidationFailedError) as raised:
        validator.check(result)
    assert raised.value.result is result
    assert str(raised.value) == (
        "driver_stats v3 (push, strict): 2 of 9 checks failed on 4 rows; nothing was written\n"
        "- [expect_column_values_to_be_between] conv_rate: 2 of 4 values (50.0%) not between 0 "
        "and 1; e.g. 2.0, 7.5\n"
        "- [expect_column_values_to_be_in_set] city: 1 of 4 values (25.0%) not in ['a', 'b']; "
        "e.g. 'c'"
    )


def test_warn_mode_records_the_failure_without_raising() -> None:
    validator, result = validate(make_view(Validation(SUITE)), BAD_ROWS)
    assert validator.mode == "warn"
    assert not result.success
    assert len(result.failures) == 2
    validator.check(result)  # warn: written, the failure is in the result
    mean = by_check(result, "expect_column_mean_to_be_between", "trips")
    assert mean.success
    assert mean.observed["observed_value"] == 2.5
    assert mean.message == "trips: mean 2.5 between 0 and 100"


def test_batches_merge_counts_samples_and_per_batch_aggregates() -> None:
    ok = [0.5] * 900
    first = make_batch(ok + [2.0] * 50 + [3.0] * 50, trips=[10] * 1000)
    second = make_batch(ok[:880] + [float(v) for v in range(4, 16)] * 10, trips=[500] * 1000)
    third = make_batch(ok + [None] * 100, trips=[10] * 1000)
    _, result = validate(make_view(Validation(SUITE, max_null_rate=0.05)), first, second, third)
    assert result.rows == 3000
    between = by_check(result, "expect_column_values_to_be_between", "conv_rate")
    assert between.observed["element_count"] == 3000
    assert between.observed["missing_count"] == 100
    assert between.observed["unexpected_count"] == 100 + 120
    assert between.observed["unexpected_percent"] == pytest.approx(100 * 220 / 2900)
    assert between.observed["failed_batches"] == 2
    assert between.observed["batches"] == 3
    assert between.samples == [2.0, 3.0, *map(float, range(4, 12))]
    assert between.message.startswith(
        "conv_rate: 220 of 2,900 non-null values (7.6%) not between 0 and 1 "
        "(failed on 2 of 3 batches); e.g. 2.0, 3.0, 4.0"
    )
    mean = by_check(result, "expect_column_mean_to_be_between", "trips")
    assert not mean.success
    assert mean.observed["observed_value"] == 500
    assert mean.message == "trips: mean 500 not between 0 and 100 (failed on 1 of 3 batches)"
    # The quick null rate counts over all rows: 100 of 3,000 is over 5% in one batch only.
    nulls = by_check(result, "null_rate", "conv_rate")
    assert nulls.observed["null_count"] == 100
    assert nulls.observed["element_count"] == 3000
    assert nulls.success


def test_an_expectation_on_a_column_missing_from_the_batch_fails_with_the_reason() -> None:
    batch = make_batch([0.5]).drop_columns(["city"])
    _, result = validate(make_view(Validation(SUITE)), batch)
    in_set = by_check(result, "expect_column_values_to_be_in_set", "city")
    assert not in_set.success
    assert 'could not be evaluated (Error: The column "city" in BatchData does not exist.)' in (
        in_set.message
    )


def test_an_invalid_expectation_is_a_definition_error_when_the_suite_compiles() -> None:
    unknown = {
        "name": "s",
        "expectations": [{"type": "expect_magic", "kwargs": {"column": "trips"}}],
    }
    with pytest.raises(
        DefinitionError, match=r"expectation 0 \(expect_magic\) of suite 's' is not valid"
    ):
        SuiteRunner(unknown, owner="feature view 'driver_stats'")
    typo = {
        "name": "s",
        "expectations": [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "trips", "min_valu": 1},
            }
        ],
    }
    with pytest.raises(DefinitionError, match="min_valu; extra fields not permitted"):
        validate(make_view(Validation(typo)), make_batch([0.5]))


def test_an_unresolved_suite_file_cannot_be_validated() -> None:
    with pytest.raises(DefinitionError, match=r"suite file 'x\.json' is not loaded; resolve"):
        ViewValidator(make_view(Validation("x.json")), version=1, trigger="push", defaults=DEFAULTS)
    with pytest.raises(QualityError, match="unknown validation trigger 'apply'"):
        ViewValidator(make_view(), version=1, trigger="apply", defaults=DEFAULTS)
    with pytest.raises(ConfigError, match="quality: max_null_rate must be a fraction"):
        QualityDefaults(max_null_rate=2)


# --- Great Expectations not installed ------------------------------------------------------


def test_without_great_expectations_warn_skips_the_suite_and_strict_rejects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes `import great_expectations` raise ImportError, as when the
    # quality extra is not installed.
    monkeypatch.setitem(sys.modules, "great_expectations", None)
    _, warned = validate(make_view(Validation(SUITE)), BAD_ROWS)
    assert warned.success  # the quick checks pass; the suite did not run
    assert warned.suite is None
    assert warned.skipped == (
        "expectation suite 'driver_stats_suite' not run: Great Expectations is not installed "
        "(pip install 'featurestore[quality]')"
    )
    assert warned.summary() == (
        f"driver_stats v3 (materialize, warn): 6 checks passed on 4 rows; {warned.skipped}"
    )
    validator, strict = validate(make_view(Validation(SUITE, mode="strict")), BAD_ROWS)
    assert [c.check for c in strict.failures] == ["expectation_suite"]
    with pytest.raises(ValidationFailedError) as raised:
        validator.check(strict)
    assert str(raised.value) == (
        "driver_stats v3 (materialize, strict): 1 of 7 checks failed on 4 rows; nothing was "
        f"written\n- [expectation_suite] {warned.skipped}; strict mode rejects rows it cannot check"
    )
    # Great Expectations is needed to run a suite, never to declare or store one.
    assert (
        Validation.from_dict(make_view(Validation(SUITE)).meta()["validation"]).suite_json == SUITE
    )


# --- Results -----------------------------------------------------------------------------


def test_results_round_trip_through_json_exactly() -> None:
    view = make_view(Validation(SUITE))
    validator = ViewValidator(
        view,
        version=2,
        trigger="on_demand",
        defaults=DEFAULTS,
        window_start=datetime(2024, 1, 1, tzinfo=UTC),
        window_end=datetime(2024, 1, 2, tzinfo=UTC),
    )
    validator.add(make_batch([0.1, None, 7.5], city=["a", "z", "b"]))
    result = validator.finish()
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["success"] is False
    assert data["window_end"] == "2024-01-02T00:00:00+00:00"
    assert ValidationResult.from_dict(data) == result
    assert result.started_at.tzinfo is not None


def test_json_safe_turns_values_into_plain_json() -> None:
    when = datetime(2024, 5, 1, 12, tzinfo=UTC)
    value = {
        "nan": math.nan,
        "inf": -math.inf,
        "np": np.float32(2.5),
        "ints": np.array([1, 2]),
        "when": when,
        "pair": (1, "a"),
        "raw": b"\x00\x01",
    }
    assert json_safe(value) == {
        "nan": None,
        "inf": "-Infinity",
        "np": 2.5,
        "ints": [1, 2],
        "when": "2024-05-01T12:00:00+00:00",
        "pair": [1, "a"],
        "raw": "AAE=",
    }


@pytest.mark.slow
def test_featurestore_imports_no_ge_and_a_suite_run_is_offline_and_silent() -> None:
    script = f"""
import json, sys
events = []
sys.addaudithook(lambda e, a: events.append(e) if e in ("socket.connect", "socket.getaddrinfo") else None)
import featurestore
from featurestore.quality.validator import ViewValidator, QualityDefaults
imported = "great_expectations" in sys.modules
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_validation import BAD_ROWS, SUITE, Validation, make_view
validator = ViewValidator(make_view(Validation(SUITE)), version=1, trigger="push",
                          defaults=QualityDefaults())
validator.add(BAD_ROWS)
result = validator.finish()
print(json.dumps({{"imported": imported, "events": events, "suite": result.suite,
                   "failures": len(result.failures)}}))
"""
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", script], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "imported": False,
        "events": [],
        "suite": "driver_stats_suite",
        "failures": 2,
    }
    assert run.stderr == ""  # no GE progress bars, no warnings
