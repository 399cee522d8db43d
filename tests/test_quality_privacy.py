"""Quality history never shows a reader the values of a feature they may not read: validation
samples, statistics (top values, quantiles, bins) and drift bins of a feature are withheld from
a principal without ``read_offline`` on it, through the SDK, the CLI and REST (the real server).

Admins run validation (at materialization), statistics, a saved dataset (its statistics) and
drift checks on ``driver_stats``, whose ``ssn`` feature is tagged ``pii``. Analysts may describe
and read everything but ``pii`` features; auditors may only describe; the ingestor may not even
describe. The SSNs (and the values of ``conv_rate``) must reach exactly who may read them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from api_server import Server

from featurestore import (
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    Policy,
    Resource,
)
from featurestore.errors import AccessDeniedError, ValidationFailedError
from featurestore.governance.access import Principal
from featurestore.quality.expectations import load_great_expectations
from featurestore.quality.result import ValidationResult
from featurestore.quality.validation import Validation
from featurestore.types import Float32, Int64, String

NOW = datetime.now(UTC).replace(microsecond=0)
COMMAND = str(Path(sys.executable).parent / "featurestore")
gx = load_great_expectations("the quality privacy tests")
SSNS = ["123-45-6789", "987-65-4321", "555-01-0199"]
RATES = [0.6171875, 0.8828125, 0.3984375]  # exact in float32, unlike any other number here
DRIVER = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
DRIVER_STATS = FeatureView(
    name="driver_stats",
    entities=[DRIVER],
    ttl=timedelta(days=10),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="ssn", dtype=String, tags={"pii": "true"}),
    ],
    source=FileSource(path="data/drivers.parquet"),
    validation=Validation(
        gx.ExpectationSuite(
            name="driver_stats_suite",
            expectations=[
                # Both fail, with the offending values as samples.
                gx.expectations.ExpectColumnValuesToBeInSet(column="ssn", value_set=["none"]),
                gx.expectations.ExpectColumnValuesToBeBetween(
                    column="conv_rate", min_value=0.0, max_value=0.1
                ),
                # An aggregate: its observed value is the most common SSN.
                gx.expectations.ExpectColumnMostCommonValueToBeInSet(
                    column="ssn", value_set=["none"]
                ),
            ],
        ),
        mode="warn",
    ),
)
#: A strict suite: a failed materialization raises with the failed checks' samples.
DRIVER_PII = FeatureView(
    name="driver_pii",
    entities=[DRIVER],
    ttl=timedelta(days=10),
    schema=[Field(name="ssn", dtype=String, tags={"pii": "true"})],
    source=FileSource(path="data/drivers.parquet"),
    validation=Validation(
        gx.ExpectationSuite(
            name="driver_pii_suite",
            expectations=[
                gx.expectations.ExpectColumnValuesToBeInSet(column="ssn", value_set=["none"])
            ],
        ),
        mode="strict",
    ),
)
POLICIES = [
    Policy(name="admins", roles=["admin"], actions=["admin"]),
    Policy(
        name="analysts-read",
        roles=["analyst"],
        actions=["describe", "read_offline", "read_online"],
    ),
    Policy(
        name="no-pii",
        effect="deny",
        roles=["analyst"],
        actions=["read_offline", "read_online"],
        resources=[Resource(kind="feature", tags={"pii": "true"})],
    ),
    Policy(name="auditors", roles=["auditor"], actions=["describe"]),
    Policy(name="operators", roles=["operator"], actions=["materialize"]),
]
ROOT = Principal("root", frozenset({"admin"}))
PRINCIPALS = {
    "admin": ("alice", ["admin"]),
    "analyst": ("bob", ["analyst"]),
    "auditor": ("carol", ["auditor"]),
    "ingestor": ("ingestor", []),
    "operator": ("olga", ["operator"]),
}
DAY = timedelta(days=1)
REFERENCE = (NOW - 9 * DAY, NOW - 5 * DAY)
CURRENT = (NOW - 4 * DAY, NOW)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The repository with its quality history written by an admin, and a token per role."""
    root = tmp_path_factory.mktemp("quality_privacy") / "repo"
    return root, build_repo(root)


def build_repo(root: Path) -> dict[str, str]:
    (root / "data").mkdir(parents=True)
    times = [NOW - 8 * DAY, NOW - 7 * DAY, NOW - 6 * DAY, NOW - 3 * DAY, NOW - 2 * DAY, NOW - DAY]
    pd.DataFrame(
        {
            "driver_id": pd.Series([1, 2, 3, 1, 2, 3], dtype="int64"),
            "event_timestamp": times,
            "conv_rate": pd.Series(RATES + RATES[::-1], dtype="float32"),
            "ssn": SSNS + SSNS[::-1],
        }
    ).to_parquet(root / "data" / "drivers.parquet")
    (root / "featurestore.yaml").write_text(
        f"project: qp_{uuid.uuid4().hex[:8]}\n"
        "online_store: {type: sqlite, path: data/online.db}\n"
    )
    tokens: dict[str, str] = {}
    with FeatureStore(root, principal=ROOT) as store:
        store.apply([DRIVER, DRIVER_STATS, DRIVER_PII, *POLICIES])
        store.materialize(NOW - 10 * DAY, NOW, ["driver_stats"], progress=False)  # validated
        store.statistics("driver_stats", *CURRENT)
        entity_df = pd.DataFrame({"driver_id": [1, 2, 3], "event_timestamp": [REFERENCE[1]] * 3})
        job = store.get_historical_features(
            entity_df, ["driver_stats:conv_rate", "driver_stats:ssn"]
        )
        job.save_dataset("train")
        store.drift("driver_stats", current_window=CURRENT, reference_window=REFERENCE)
        store.drift("driver_stats", current_window=CURRENT, reference_dataset="train")
        for role, (name, roles) in PRINCIPALS.items():
            tokens[role], _ = store.create_key(name, roles=roles)
    return tokens


def ssns_in(value: Any) -> list[str]:
    text = json.dumps(value, default=str)
    return [ssn for ssn in SSNS if ssn in text]


def rates_in(value: Any) -> bool:
    text = json.dumps(value, default=str)
    return any(str(rate) in text for rate in RATES)


def history(store: FeatureStore) -> dict[str, Any]:
    """Every kind of quality history, as JSON-ready data."""
    return {
        "validations": [r.to_dict() for r in store.validation_history("driver_stats")],
        "statistics": [s.to_dict() for s in store.statistics_history("driver_stats")],
        "dataset": [s.to_dict() for s in store.statistics_history("train", dataset=True)],
        "drift": store.drift_history("driver_stats"),
    }


def test_sdk_history_shows_values_only_to_who_may_read_them(
    repo: tuple[Path, dict[str, str]],
) -> None:
    root, tokens = repo
    with FeatureStore(root, token=tokens["admin"]) as admin:
        full = history(admin)
    # The admin sees every value: the records really hold them.
    for kind in ("validations", "statistics", "dataset"):
        assert ssns_in(full[kind]) == SSNS, kind
        assert rates_in(full[kind]), kind
    assert ssns_in(full["drift"]), "drift bins label the SSN categories"

    with FeatureStore(root, token=tokens["analyst"]) as analyst:
        seen = history(analyst)
    assert ssns_in(seen) == []
    for kind in ("validations", "statistics", "dataset"):
        assert rates_in(seen[kind]), f"{kind}: conv_rate stays readable for the analyst"
    [validation] = seen["validations"]
    checks = {(c["check"], c["column"]): c for c in validation["checks"]}
    in_set = checks[("expect_column_values_to_be_in_set", "ssn")]
    assert in_set["samples"] == []
    assert in_set["redacted"] is True
    assert in_set["success"] is False
    assert in_set["observed"]["unexpected_count"] == 3  # counts stay
    assert "values withheld" in in_set["message"]
    rate_check = checks[("expect_column_values_to_be_between", "conv_rate")]
    assert rate_check["redacted"] is False
    assert sorted(rate_check["samples"]) == sorted(RATES)
    assert checks[("null_rate", "ssn")]["observed"]["null_rate"] == 0.0
    for stats in seen["statistics"] + seen["dataset"]:
        columns = stats["profile"]["columns"]
        ssn = columns["ssn"]
        assert ssn["redacted"] is True
        assert ssn["top_values"] == ssn["categories"] == []
        assert ssn["min"] is None
        assert (ssn["rows"], ssn["nulls"]) == (3, 0)
        assert columns["conv_rate"]["redacted"] is False
        assert columns["conv_rate"]["top_values"]
    for report in seen["drift"]:
        features = {f["feature"]: f for f in report["features"]}
        assert features["ssn"]["bins"] == []
        assert features["ssn"]["redacted"] is True
        assert features["ssn"]["psi"] is not None  # the metric itself is no value
        assert features["conv_rate"]["bins"]

    # Describe only: counts and outcomes, no value of any feature.
    with FeatureStore(root, token=tokens["auditor"]) as auditor:
        counts = history(auditor)
    assert ssns_in(counts) == []
    assert not rates_in(counts)
    assert len(counts["validations"]) == len(full["validations"]) == 1

    with FeatureStore(root, token=tokens["ingestor"]) as ingestor:
        for read in (
            lambda: ingestor.validation_history("driver_stats"),
            lambda: ingestor.statistics_history("driver_stats"),
            lambda: ingestor.statistics_history("train", dataset=True),
            lambda: ingestor.drift_history("driver_stats"),
        ):
            with pytest.raises(AccessDeniedError):
                read()


def test_a_deleted_views_history_is_filtered_by_its_last_tags(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    tokens = build_repo(root)
    with FeatureStore(root, principal=ROOT) as admin:
        admin.apply([DRIVER, DRIVER_PII, *POLICIES], delete_missing=True)  # driver_stats goes
    with FeatureStore(root, token=tokens["analyst"]) as analyst:
        [first, *_] = analyst.statistics_history("driver_stats")
    assert first.profile.columns["ssn"].redacted
    assert not first.profile.columns["conv_rate"].redacted  # readable, as it was declared


def test_a_drift_outcome_withholds_other_views_columns_of_its_reference(
    repo: tuple[Path, dict[str, str]],
) -> None:
    """Running a check needs read_offline on the view; the outcome's statistics of a saved
    dataset are filtered like the history."""
    root, tokens = repo
    with (
        FeatureStore(root, token=tokens["analyst"]) as analyst,
        pytest.raises(AccessDeniedError, match="no-pii"),
    ):
        analyst.drift("driver_stats", current_window=CURRENT, reference_dataset="train")
    with FeatureStore(root, token=tokens["admin"]) as admin:
        outcome = admin.drift("driver_stats", current_window=CURRENT, reference_dataset="train")
    assert ssns_in(outcome.reference.to_dict())
    assert ssns_in(outcome.to_dict())


def test_a_failed_strict_materialization_shows_only_readable_values(
    repo: tuple[Path, dict[str, str]],
) -> None:
    """``materialize`` does not imply ``read_offline``: the error of a strict failure keeps
    the samples from an operator who may not read the feature."""
    root, tokens = repo
    window = (NOW - 10 * DAY, NOW)
    with (
        FeatureStore(root, token=tokens["operator"]) as operator,
        pytest.raises(ValidationFailedError) as refused,
    ):
        operator.materialize(*window, ["driver_pii"], progress=False)
    assert ssns_in(str(refused.value)) == []
    assert "values withheld" in str(refused.value)
    assert isinstance(refused.value.result, ValidationResult)
    assert ssns_in(refused.value.result.to_dict()) == []
    with FeatureStore(root, token=tokens["admin"]) as admin:
        with pytest.raises(ValidationFailedError) as shown:
            admin.materialize(*window, ["driver_pii"], progress=False)
        # The record keeps the values, for readers who may see them.
        [recorded, _] = admin.validation_history("driver_pii")
    assert ssns_in(str(shown.value)) == SSNS
    assert ssns_in(recorded.to_dict()) == SSNS


def cli(root: Path, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, "--repo", str(root), "--token", token, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_history_withholds_values(repo: tuple[Path, dict[str, str]]) -> None:
    root, tokens = repo
    commands = [
        ("validate", "driver_stats", "--history", "--json"),
        ("stats", "driver_stats", "--history", "--json"),
    ]
    for command in commands:
        admin = cli(root, tokens["admin"], *command)
        assert admin.returncode == 0, admin.stderr
        assert ssns_in(json.loads(admin.stdout)) == SSNS, command
        analyst = cli(root, tokens["analyst"], *command)
        assert analyst.returncode == 0, analyst.stderr
        assert ssns_in(analyst.stdout) == [], command
        assert rates_in(json.loads(analyst.stdout)), command
        refused = cli(root, tokens["ingestor"], *command)
        assert refused.returncode == 1, command
        assert "describe" in refused.stderr, command
    window = f"{CURRENT[0].isoformat()}..{CURRENT[1].isoformat()}"
    drift = ("drift", "driver_stats", "--current-window", window, "--reference", "train", "--json")
    refused = cli(root, tokens["analyst"], *drift)
    assert refused.returncode == 1
    assert "no-pii" in refused.stderr
    assert ssns_in(refused.stdout + refused.stderr) == []


def test_rest_quality_routes_withhold_values(repo: tuple[Path, dict[str, str]]) -> None:
    root, tokens = repo
    store = FeatureStore(root)
    window = f"{CURRENT[0].isoformat()}..{CURRENT[1].isoformat()}"
    try:
        with Server(store) as server:

            def get(path: str, token: str, **params: str) -> httpx.Response:
                headers = {"Authorization": f"Bearer {token}"}
                return httpx.get(f"{server.url}{path}", headers=headers, params=params, timeout=30)

            admin = get("/v1/validations/driver_stats", tokens["admin"])
            assert admin.status_code == 200, admin.text
            assert ssns_in(admin.json()) == SSNS
            analyst = get("/v1/validations/driver_stats", tokens["analyst"])
            assert analyst.status_code == 200, analyst.text
            assert ssns_in(analyst.json()) == []
            assert rates_in(analyst.json())
            assert get("/v1/validations/driver_stats", tokens["ingestor"]).status_code == 403
            refused = get(
                "/v1/drift/driver_stats",
                tokens["analyst"],
                current_window=window,
                reference="train",
            )
            assert refused.status_code == 403
            assert ssns_in(refused.json()) == []
    finally:
        store.close()
