"""Statistics and drift through the facade, the CLI (a subprocess), the REST service and
OpenLineage, on generated data with fixed seeds.

The view ``trips`` holds one numeric feature (``fare``, normal) and one categorical feature
(``zone``, three values) in three weeks of rows: week 1 and week 3 come from the same
distributions (different seeds), week 2 is shifted (fare mean +0.5 sd, zone mix reversed).
The documented default thresholds apply (PSI 0.2, KS 0.1, chi-square p-value 0.01).
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

import httpx
import numpy as np
import pandas as pd
import pytest
from api_server import Server
from openlineage_spec import validate_event

from featurestore import Entity, FeatureStore, FeatureView, Field, FileSource
from featurestore.errors import ObjectNotFoundError, QualityError
from featurestore.governance.openlineage_client import PRODUCER
from featurestore.types import Float64, Int64, String

COMMAND = str(Path(sys.executable).parent / "featurestore")
WEEK = timedelta(days=7)
W1 = datetime(2026, 6, 1, tzinfo=UTC)
W2, W3 = W1 + WEEK, W1 + 2 * WEEK
ROWS = 3000
RIDER = Entity(name="rider", join_keys=["rider_id"], value_type=Int64)
TRIPS = FeatureView(
    name="trips",
    entities=[RIDER],
    schema=[Field(name="fare", dtype=Float64), Field(name="zone", dtype=String)],
    source=FileSource(path="data/trips.parquet"),
)


def week(start: datetime, seed: int, *, shifted: bool, first_id: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mix = [0.2, 0.3, 0.5] if shifted else [0.5, 0.3, 0.2]
    return pd.DataFrame(
        {
            "rider_id": np.arange(first_id, first_id + ROWS, dtype="int64"),
            "event_timestamp": start + pd.to_timedelta(rng.integers(0, 7 * 86400 - 1, ROWS), "s"),
            "fare": rng.normal(0.5 if shifted else 0.0, 1.0, ROWS),
            "zone": rng.choice(["north", "centre", "south"], ROWS, p=mix),
        }
    )


def window(start: datetime) -> tuple[datetime, datetime]:
    return (start, start + WEEK - timedelta(microseconds=1))


def text(bounds: tuple[datetime, datetime]) -> str:
    return f"{bounds[0].isoformat()}..{bounds[1].isoformat()}"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    frames = [
        week(W1, 1, shifted=False, first_id=0),
        week(W2, 2, shifted=True, first_id=ROWS),
        week(W3, 3, shifted=False, first_id=2 * ROWS),
    ]
    pd.concat(frames, ignore_index=True).to_parquet(tmp_path / "data" / "trips.parquet")
    (tmp_path / "featurestore.yaml").write_text(
        f"project: drift_{uuid.uuid4().hex[:8]}\n"
        f"online_store: {{type: sqlite, path: {tmp_path / 'online.db'}}}\n"
        "lineage: {openlineage: {transport: file, path: data/lineage.jsonl}}\n"
    )
    with FeatureStore(tmp_path) as store:
        store.apply([RIDER, TRIPS])
    return tmp_path


@pytest.fixture
def store(repo: Path) -> Iterator[FeatureStore]:
    with FeatureStore(repo) as opened:
        yield opened


def frame(repo: Path) -> pd.DataFrame:
    return pd.read_parquet(repo / "data" / "trips.parquet")


# -- statistics ------------------------------------------------------------------------------------


def test_statistics_match_pandas_and_are_kept_per_window(repo: Path, store: FeatureStore) -> None:
    first = store.statistics("trips", *window(W1))
    second = store.statistics("trips", *window(W2))
    data = frame(repo)
    in_w1 = data[(data.event_timestamp >= W1) & (data.event_timestamp < W2)]
    fare = first.profile.columns["fare"]
    assert first.profile.rows == fare.rows == ROWS
    assert fare.mean == pytest.approx(in_w1.fare.mean(), rel=1e-9)
    assert fare.stddev == pytest.approx(in_w1.fare.std(), rel=1e-9)
    assert fare.quantiles["p50"] == pytest.approx(in_w1.fare.quantile(0.5), rel=1e-9)
    zone = first.profile.columns["zone"]
    expected = in_w1.zone.value_counts()
    assert dict(zone.top_values) == {k: int(v) for k, v in expected.items()}
    history = store.statistics_history("trips")
    assert [s.id for s in history] == [first.id, second.id]
    assert history[1].window_start == W2
    assert history[1].profile.columns["fare"].mean == pytest.approx(
        second.profile.columns["fare"].mean
    )


def test_a_saved_dataset_keeps_its_statistics_as_the_reference(
    repo: Path, store: FeatureStore
) -> None:
    data = frame(repo)
    entities = data[data.event_timestamp < W2][["rider_id", "event_timestamp"]]
    job = store.get_historical_features(entities, ["trips:fare", "trips:zone"])
    job.save_dataset("training_w1")
    [stats] = store.statistics_history("training_w1", dataset=True)
    assert stats.profile.rows == ROWS
    assert stats.features["fare"] == {"view": "trips", "feature": "fare"}
    assert stats.profile.columns["fare"].mean == pytest.approx(
        data[data.event_timestamp < W2].fare.mean()
    )


# -- drift -----------------------------------------------------------------------------------------


def test_a_shifted_window_drifts_and_an_identical_one_does_not(store: FeatureStore) -> None:
    shifted = store.drift("trips", reference_window=window(W1), current_window=window(W2))
    assert shifted.report.drifted
    assert sorted(shifted.report.drifted_features) == ["fare", "zone"]
    by_name = {f.feature: f for f in shifted.report.features}
    assert (by_name["fare"].ks or 0.0) > 0.1
    assert by_name["zone"].chi2_p_value is not None
    assert by_name["zone"].chi2_p_value < 1e-6
    same = store.drift("trips", reference_window=window(W1), current_window=window(W3))
    assert not same.report.drifted, same.report.summary()
    assert [f.drifted for f in same.report.features] == [False, False]


def test_drift_against_a_saved_dataset(repo: Path, store: FeatureStore) -> None:
    data = frame(repo)
    entities = data[data.event_timestamp < W2][["rider_id", "event_timestamp"]]
    store.get_historical_features(entities, ["trips:fare", "trips:zone"]).save_dataset("w1")
    drifted = store.drift("trips", reference_dataset="w1", current_window=window(W2))
    assert drifted.report.drifted
    assert drifted.report.reference == "dataset w1"
    steady = store.drift("trips", reference_dataset="w1", current_window=window(W3))
    assert not steady.report.drifted
    traced = store.trace_lineage("w1", "downstream", kind="saved_dataset")
    assert {e.relation for e in traced.edges} == {"reference_of"}
    assert [r["drifted"] for r in store.drift_history("trips")] == [True, False]


def test_drift_errors_name_the_problem(store: FeatureStore) -> None:
    empty = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC))
    with pytest.raises(QualityError, match="no rows"):
        store.drift("trips", reference_window=window(W1), current_window=empty)
    with pytest.raises(QualityError, match="no rows"):
        store.drift("trips", reference_window=empty, current_window=window(W1))
    with pytest.raises(ObjectNotFoundError, match="nope"):
        store.drift("trips", reference_dataset="nope", current_window=window(W1))
    with pytest.raises(QualityError, match="not both"):
        store.drift("trips", current_window=window(W1))


# -- CLI -------------------------------------------------------------------------------------------


def run(repo: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("FEATURESTORE_DEBUG", None)
    result = subprocess.run(
        [COMMAND, "--repo", str(repo), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == expect, (result.stdout, result.stderr)
    return result


@pytest.mark.slow
def test_cli_drift_exit_codes_and_plots(repo: Path, tmp_path: Path) -> None:
    plot = tmp_path / "drift.html"
    drifted = run(
        repo,
        "drift",
        "trips",
        "--reference-window",
        text(window(W1)),
        "--current-window",
        text(window(W2)),
        "--plot",
        str(plot),
        expect=3,
    )
    assert "fare" in drifted.stdout
    assert "zone" in drifted.stdout
    page = plot.read_text()
    for expected in ("fare", "zone", "<svg"):
        assert expected in page
    png = tmp_path / "drift.png"
    run(
        repo,
        "drift",
        "trips",
        "--reference-window",
        text(window(W1)),
        "--current-window",
        text(window(W3)),
        "--plot",
        str(png),
        "--json",
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run(repo, "drift", "trips", "--current-window", "garbage", expect=2)
    # A stricter threshold from the command line turns the steady week into a drift.
    run(
        repo,
        "drift",
        "trips",
        "--reference-window",
        text(window(W1)),
        "--current-window",
        text(window(W3)),
        "--psi",
        "0.0001",
        expect=3,
    )


@pytest.mark.slow
def test_cli_stats_and_validate(repo: Path) -> None:
    shown = run(
        repo, "stats", "trips", "--start", W1.isoformat(), "--end", window(W1)[1].isoformat()
    )
    assert "fare" in shown.stdout
    assert "3,000 rows" in shown.stdout
    stats = json.loads(run(repo, "stats", "trips", "--json").stdout)
    assert stats["profile"]["rows"] == 3 * ROWS
    history = run(repo, "stats", "trips", "--history")
    assert history.stdout.count("3,000") >= 1
    checked = run(repo, "validate", "trips")
    assert "passed" in checked.stdout or "0 of" in checked.stdout
    listed = run(repo, "validate", "--history", "trips")
    assert "on_demand" in listed.stdout


# -- REST ------------------------------------------------------------------------------------------


def test_rest_drift_report_and_validation_history(store: FeatureStore) -> None:
    store.validate("trips")
    with Server(store) as server:
        answer = httpx.get(
            f"{server.url}/v1/drift/trips",
            params={"reference_window": text(window(W1)), "current_window": text(window(W2))},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["drifted"] is True
        assert {f["feature"] for f in body["features"] if f["drifted"]} == {"fare", "zone"}
        missing = httpx.get(
            f"{server.url}/v1/drift/trips", params={"current_window": text(window(W2))}
        )
        assert missing.status_code == 422
        bad = httpx.get(
            f"{server.url}/v1/drift/trips",
            params={"reference_window": "x", "current_window": text(window(W2))},
        )
        assert bad.status_code == 422
        assert "START..END" in bad.json()["error"]["message"]
        unknown = httpx.get(
            f"{server.url}/v1/drift/nope",
            params={"reference_window": text(window(W1)), "current_window": text(window(W2))},
        )
        assert unknown.status_code == 404
        listed = httpx.get(f"{server.url}/v1/validations/trips").json()
        assert [v["trigger"] for v in listed["validations"]] == ["on_demand"]
        assert httpx.get(f"{server.url}/v1/validations/nope").status_code == 404


# -- OpenLineage -----------------------------------------------------------------------------------


def events(repo: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (repo / "data" / "lineage.jsonl").read_text().splitlines()]


def test_quality_runs_carry_openlineage_quality_facets(repo: Path, store: FeatureStore) -> None:
    store.validate("trips")
    store.drift("trips", reference_window=window(W1), current_window=window(W2))
    found = events(repo)
    for event in found:
        validate_event(event, PRODUCER)
    validated = [e for e in found if e["job"]["name"].endswith(".validate.trips")]
    assert {e["eventType"] for e in validated} == {"START", "COMPLETE"}
    facets = validated[-1]["inputs"][0]["inputFacets"]
    assertions = facets["dataQualityAssertions"]["assertions"]
    assert {(a["assertion"], a["column"]) for a in assertions} >= {("null_rate", "fare")}
    assert facets["dataQualityMetrics"]["rowCount"] == 3 * ROWS
    drift = [e for e in found if e["job"]["name"].endswith(".drift.trips")][-1]
    reference, current = drift["inputs"]
    metrics = current["inputFacets"]["dataQualityMetrics"]
    assert metrics["rowCount"] == ROWS
    assert metrics["columnMetrics"]["fare"]["nullCount"] == 0
    no_drift = {
        a["column"]: a["success"]
        for a in current["inputFacets"]["dataQualityAssertions"]["assertions"]
    }
    assert no_drift == {"fare": False, "zone": False}
    assert reference["inputFacets"]["dataQualityMetrics"]["rowCount"] == ROWS


def test_a_jump_in_the_null_rate_drifts_even_when_the_values_do_not(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    later = week(W2, 3, shifted=False, first_id=ROWS)
    later.loc[later.index % 10 < 3, "fare"] = np.nan  # 30% of the fares go missing
    pd.concat([week(W1, 1, shifted=False, first_id=0), later], ignore_index=True).to_parquet(
        tmp_path / "data" / "trips.parquet"
    )
    (tmp_path / "featurestore.yaml").write_text(
        f"project: nulls\nonline_store: {{type: sqlite, path: {tmp_path / 'online.db'}}}\n"
    )
    with FeatureStore(tmp_path) as store:
        store.apply([RIDER, TRIPS])
        outcome = store.drift("trips", reference_window=window(W1), current_window=window(W2))
        assert outcome.report.drifted_features == ["fare"]
        [fare] = [f for f in outcome.report.features if f.feature == "fare"]
        assert fare.current_null_rate == pytest.approx(0.3)
        assert fare.psi is not None
        assert fare.psi < 0.2  # the values themselves did not move
        assert any("null rate 0.0% -> 30.0%" in reason for reason in fare.reasons)
        off = store.quality.thresholds_with(null_rate=0)
        quiet = store.drift(
            "trips", reference_window=window(W1), current_window=window(W2), thresholds=off
        )
        assert not quiet.report.drifted
