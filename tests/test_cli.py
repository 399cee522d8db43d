"""The CLI, through the real `featurestore` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

COMMAND = str(Path(sys.executable).parent / "featurestore")

DEFINITIONS = """\
from datetime import timedelta
from featurestore import Entity, FeatureService, FeatureView, Field, FileSource
from featurestore.types import Float32, Int64

driver = Entity(name="driver", join_keys=["driver_id"], value_type=Int64)
driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(hours=2),
    schema=[Field(name="conv_rate", dtype=Float32), Field(name="trips", dtype=Int64)],
    source=FileSource(path="data/stats.parquet", created_timestamp_column="created"),
    description="hourly stats",
)
svc = FeatureService(name="svc", features=[driver_stats[["conv_rate"]]])
"""


def run(repo: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("FEATURESTORE_DEBUG", None)
    result = subprocess.run(
        [COMMAND, "--repo", str(repo), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == expect, (result.stdout, result.stderr)
    return result


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    (root / "featurestore.yaml").write_text("project: clitest\n")
    (root / "features.py").write_text(DEFINITIONS)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    pd.DataFrame(
        {
            "driver_id": [1, 1, 2],
            "event_timestamp": [t0, t0 + timedelta(hours=1), t0],
            "created": [t0, t0 + timedelta(hours=1), t0],
            "conv_rate": [0.1, 0.2, 0.3],
            "trips": [1, 2, 3],
        }
    ).to_parquet(root / "data" / "stats.parquet")
    pd.DataFrame(
        {
            "driver_id": [2, 1, 1, 3],
            "event_timestamp": [t0, t0 + timedelta(minutes=30), t0 + timedelta(hours=4), t0],
        }
    ).to_parquet(root / "entities.parquet")
    return root


def test_apply_list_describe_retrieve(repo: Path) -> None:
    out = run(repo, "apply").stdout
    assert "driver_stats" in out
    assert "added" in out
    assert "Warning: feature view 'driver_stats' v1 has nothing in the online store yet" in out
    assert "run materialize" in out
    assert "No changes" in run(repo, "apply").stdout
    assert "driver_stats:conv_rate" in run(repo, "list", "features").stdout
    assert "svc" in run(repo, "list", "feature-services").stdout
    assert '"name": "driver_stats"' in run(repo, "describe", "driver_stats").stdout
    output = repo / "out" / "train.parquet"
    result = run(
        repo,
        "get-historical-features",
        "--entity-df",
        str(repo / "entities.parquet"),
        "--features",
        "driver_stats:conv_rate,driver_stats:trips",
        "--output",
        str(output),
    )
    assert "Wrote 4 rows" in result.stdout
    frame = pd.read_parquet(output)
    assert frame["driver_id"].tolist() == [2, 1, 1, 3]
    assert frame["trips"].tolist()[:2] == [3, 1]
    assert frame["trips"].isna().tolist()[2:] == [True, True]
    by_service = repo / "svc.parquet"
    run(
        repo,
        "get-historical-features",
        "--entity-df",
        str(repo / "entities.parquet"),
        "--feature-service",
        "svc",
        "--output",
        str(by_service),
    )
    assert list(pd.read_parquet(by_service).columns) == [
        "driver_id",
        "event_timestamp",
        "conv_rate",
    ]


def test_plan_metadata_change_then_breaking_retype(repo: Path) -> None:
    run(repo, "apply")
    features = repo / "features.py"
    features.write_text(
        DEFINITIONS.replace('description="hourly stats"', 'description="stats per hour"')
    )
    plan = run(repo, "plan").stdout
    assert "metadata" in plan
    assert "v1 -> v2" not in plan
    run(repo, "apply")
    features.write_text(
        DEFINITIONS.replace('description="hourly stats"', 'description="stats per hour"').replace(
            'Field(name="trips", dtype=Int64)', 'Field(name="trips", dtype=Float32)'
        )
    )
    plan = run(repo, "plan").stdout
    assert "v1 -> v2" in plan
    assert "BREAKING" in plan
    run(repo, "apply")
    history = run(repo, "history", "driver_stats", "--kind", "feature_view").stdout
    assert "metadata" in history
    assert "v2" in history
    described = run(repo, "describe", "driver_stats", "--version", "1").stdout
    assert '"dtype": "Int64"' in described


def test_plan_fail_on_breaking_exits_3_for_ci(repo: Path) -> None:
    run(repo, "apply")
    features = repo / "features.py"
    features.write_text(DEFINITIONS.replace('description="hourly stats"', 'description="per hour"'))
    # Without breaking changes the flag changes nothing.
    assert "metadata" in run(repo, "plan", "--fail-on-breaking").stdout
    features.write_text(
        DEFINITIONS.replace(
            'Field(name="trips", dtype=Int64)', 'Field(name="trips", dtype=Float32)'
        )
    )
    # Plain `plan` still exits 0; with the flag, the breaking retype fails the CI step.
    assert "BREAKING" in run(repo, "plan").stdout
    failed = run(repo, "plan", "--fail-on-breaking", expect=3)
    assert "1 breaking change(s)." in failed.stdout


def test_repo_option_is_accepted_after_the_command(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("FEATURESTORE_REPO", None)

    def typed(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [COMMAND, *args], capture_output=True, text=True, env=env, cwd=elsewhere, timeout=120
        )
        assert result.returncode == 0, (result.stdout, result.stderr)
        return result

    assert "Applied to project 'clitest'" in typed("apply", "--repo", str(repo)).stdout
    assert "driver_stats:conv_rate" in typed("list", "features", "--repo", str(repo)).stdout
    # Sub-groups take it too, and the option nearest the command wins (`elsewhere` has no
    # featurestore.yaml, so reading it would fail).
    listed = typed("--repo", str(elsewhere), "access", "keys", "list", "--repo", str(repo))
    assert "principal" in listed.stdout


def test_apply_rejects_a_service_whose_feature_names_clash(repo: Path) -> None:
    clash = DEFINITIONS + (
        "copy = FeatureView(name='stats_copy', entities=[driver], schema=[Field(name='conv_rate', "
        "dtype=Float32)], source=FileSource(path='data/stats.parquet'))\n"
        "both = FeatureService(name='both', features=[driver_stats, copy])\n"
    )
    (repo / "features.py").write_text(clash)
    failed = run(repo, "apply", expect=1)
    assert "feature service 'both' exposes the feature name 'conv_rate' more than once" in (
        failed.stderr
    )
    assert "driver_stats:conv_rate and stats_copy:conv_rate" in failed.stderr
    # Nothing was written.
    assert "svc" not in run(repo, "list", "feature-services").stdout


def test_deleted_objects_keep_history(repo: Path) -> None:
    run(repo, "apply")
    (repo / "features.py").write_text(
        DEFINITIONS.replace("svc = FeatureService", "_svc = None and FeatureService")
    )
    assert "deleted" in run(repo, "apply").stdout
    assert "svc" not in run(repo, "list", "feature-services").stdout
    assert "deleted" in run(repo, "history", "svc").stdout


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("no-config", ["apply"], "no featurestore.yaml"),
        ("import-error", ["apply"], "features.py:1: ModuleNotFoundError"),
        (
            "ok",
            [
                "get-historical-features",
                "--entity-df",
                "ENTITIES",
                "--features",
                "driver_stats:nope",
                "--output",
                "o.parquet",
            ],
            "has no feature 'nope'",
        ),
        ("ok", ["describe", "nothing"], "no object named 'nothing'"),
        ("missing-column", ["apply"], "conv_rate"),
    ],
)
def test_errors_are_one_line_without_traceback(
    repo: Path, setup: str, args: list[str], message: str
) -> None:
    if setup == "no-config":
        (repo / "featurestore.yaml").unlink()
    elif setup == "import-error":
        (repo / "features.py").write_text("import no_such_module_anywhere\n")
    elif setup == "missing-column":
        pd.DataFrame(
            {
                "driver_id": [1],
                "event_timestamp": [datetime(2026, 1, 1, tzinfo=UTC)],
                "created": [datetime(2026, 1, 1, tzinfo=UTC)],
                "trips": [1],
            }
        ).to_parquet(repo / "data" / "stats.parquet")
    else:
        run(repo, "apply")
    args = [str(repo / "entities.parquet") if a == "ENTITIES" else a for a in args]
    result = run(repo, *args, expect=1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_init_scaffolds_a_working_repo(tmp_path: Path) -> None:
    target = tmp_path / "new_repo"
    assert "Created feature repository" in run(tmp_path, "init", str(target)).stdout
    out = run(target, "apply").stdout
    assert "driver_stats" in out
    assert "driver_stats:conv_rate" in run(target, "list", "features").stdout
    assert run(tmp_path, "init", str(target), expect=1).stderr.startswith("Error: cannot scaffold")


def test_get_historical_features_filter_by_created_timestamp(repo: Path) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    # The T0 + 1h value of driver 1 is corrected at T0 + 3h: after the T0 + 2h entity row.
    pd.DataFrame(
        {
            "driver_id": [1, 1],
            "event_timestamp": [t0 + timedelta(hours=1)] * 2,
            "created": [t0 + timedelta(hours=1), t0 + timedelta(hours=3)],
            "conv_rate": [0.25, 0.75],
            "trips": [2, 4],
        }
    ).to_parquet(repo / "data" / "stats.parquet")
    pd.DataFrame(
        {"driver_id": [1, 1], "event_timestamp": [t0 + timedelta(hours=2), t0 + timedelta(hours=3)]}
    ).to_parquet(repo / "entities.parquet")
    run(repo, "apply")
    trips = {}
    for flags in ([], ["--filter-by-created-timestamp"]):
        output = repo / f"out{len(flags)}.parquet"
        run(
            repo,
            "get-historical-features",
            "--entity-df",
            str(repo / "entities.parquet"),
            "--features",
            "driver_stats:trips",
            *flags,
            "--output",
            str(output),
        )
        trips[len(flags)] = pd.read_parquet(output)["trips"].tolist()
    assert trips == {0: [4, 4], 1: [2, 4]}
