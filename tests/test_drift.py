"""Drift metrics from profiles computed by the real engine on generated data (fixed seeds).

The view ``payments`` has a numeric feature (``amount``, normal) and a categorical one
(``channel``, three values). Each week of rows comes from one generator: ``base`` (the
reference), ``base`` again with another seed (must not drift), ``shifted`` (amount mean
+0.5 sd) and ``remixed`` (channel mix changed). Default thresholds: PSI 0.2, KS 0.1, chi-square
p-value 0.01. The metrics are checked against scipy (a test dependency only) and numpy.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import special, stats

from featurestore import Entity, FeatureView, Field, FileSource
from featurestore.config import RepoConfig
from featurestore.errors import QualityError
from featurestore.offline.backends import open_offline_engine
from featurestore.offline.base import SupportsStatistics
from featurestore.quality.drift import (
    PSI_EPSILON,
    DriftReport,
    DriftThresholds,
    chi_square_p_value,
    compare,
    regularized_upper_gamma,
)
from featurestore.quality.profile import TableProfile
from featurestore.types import Float64, Int64, String

ROWS = 20_000
WEEK = timedelta(days=7)
T0 = datetime(2026, 3, 2, tzinfo=UTC)
CUSTOMER = Entity(name="customer", join_keys=["customer_id"], value_type=Int64)
PAYMENTS = FeatureView(
    name="payments",
    entities=[CUSTOMER],
    schema=[Field(name="amount", dtype=Float64), Field(name="channel", dtype=String)],
    source=FileSource(path="data/payments.parquet"),
)
CHANNELS = ["card", "transfer", "wallet"]
#: (week index, seed, amount mean, channel mix)
WEEKS = {
    "base": (0, 1, 0.0, [0.5, 0.3, 0.2]),
    "same": (1, 2, 0.0, [0.5, 0.3, 0.2]),
    "shifted": (2, 3, 0.5, [0.5, 0.3, 0.2]),
    "remixed": (3, 4, 0.0, [0.35, 0.35, 0.3]),
}
COLUMNS = {"amount": "amount", "channel": "channel"}


def week_rows(name: str) -> pd.DataFrame:
    index, seed, mean, mix = WEEKS[name]
    rng = np.random.default_rng(seed)
    start = T0 + index * WEEK
    return pd.DataFrame(
        {
            "customer_id": rng.integers(1, 5_000, ROWS),
            "event_timestamp": start + pd.to_timedelta(rng.integers(0, 7 * 86_400, ROWS), "s"),
            "amount": rng.normal(mean, 1.0, ROWS),
            "channel": rng.choice(CHANNELS, ROWS, p=mix),
        }
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("drift")
    (path / "data").mkdir()
    frame = pd.concat([week_rows(name) for name in WEEKS], ignore_index=True)
    frame["event_timestamp"] = frame["event_timestamp"].dt.tz_convert(UTC)
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path / "data" / "payments.parquet"
    )
    return path


@pytest.fixture(scope="module")
def engine(repo: Path) -> SupportsStatistics:
    """The configured engine (the table's default, DuckDB), opened as the facade opens it."""
    engine = open_offline_engine(RepoConfig(project="t", repo_path=repo, registry="sqlite://"))
    assert isinstance(engine, SupportsStatistics)
    return engine


def window(name: str) -> tuple[int, int]:
    start = T0 + WEEKS[name][0] * WEEK
    end = start + WEEK - timedelta(microseconds=1)
    return int(start.timestamp() * 1e6), int(end.timestamp() * 1e6)


def profiles(engine: SupportsStatistics, current: str) -> tuple[TableProfile, TableProfile]:
    start, end = window("base")
    reference = engine.view_statistics(PAYMENTS, start_us=start, end_us=end)
    start, end = window(current)
    probed = engine.view_statistics(
        PAYMENTS, start_us=start, end_us=end, reference=reference.columns
    )
    return reference, probed


def drift(
    engine: SupportsStatistics, current: str, thresholds: DriftThresholds | None = None
) -> DriftReport:
    reference, probed = profiles(engine, current)
    return compare(
        reference,
        probed,
        COLUMNS,
        view="payments",
        reference_label="week base",
        current_label=f"week {current}",
        thresholds=thresholds or DriftThresholds(),
    )


def test_identically_distributed_sample_does_not_drift(engine: SupportsStatistics) -> None:
    report = drift(engine, "same")
    assert not report.drifted
    assert report.drifted_features == []
    amount, channel = report.features
    assert amount.psi is not None
    assert amount.psi < 0.01
    assert amount.ks is not None
    assert amount.ks < 0.03
    assert channel.chi2_p_value is not None
    assert channel.chi2_p_value > 0.01


def test_mean_shift_of_half_a_standard_deviation_drifts(engine: SupportsStatistics) -> None:
    report = drift(engine, "shifted")
    assert report.drifted_features == ["amount"]
    amount = report.features[0]
    assert amount.ks is not None
    assert amount.ks > 0.15
    assert any(reason.startswith("KS") for reason in amount.reasons)
    assert amount.psi is not None
    assert amount.psi > 0.2


def test_category_mix_shift_drifts(engine: SupportsStatistics) -> None:
    report = drift(engine, "remixed")
    assert report.drifted_features == ["channel"]
    channel = report.features[1]
    assert channel.chi2_p_value is not None
    assert channel.chi2_p_value < 1e-12
    assert any(reason.startswith("chi-square") for reason in channel.reasons)
    assert [b["label"] for b in channel.bins] == ["card", "transfer", "wallet"]


def test_ks_agrees_with_scipy(engine: SupportsStatistics) -> None:
    for current in ("same", "shifted"):
        report = drift(engine, current)
        expected = stats.ks_2samp(week_rows("base")["amount"], week_rows(current)["amount"])
        assert report.features[0].ks == pytest.approx(expected.statistic, abs=0.02)


def test_chi_square_agrees_with_scipy(engine: SupportsStatistics) -> None:
    for current in ("same", "remixed"):
        channel = drift(engine, current).features[1]
        table = [
            [int((week_rows(name)["channel"] == c).sum()) for c in CHANNELS]
            for name in ("base", current)
        ]
        expected = stats.chi2_contingency(table, correction=False)
        assert channel.chi2 == pytest.approx(expected.statistic, rel=1e-9)
        assert channel.chi2_dof == expected.dof == 2
        assert channel.chi2_p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_psi_agrees_with_numpy(engine: SupportsStatistics) -> None:
    base = week_rows("base")
    for current in ("same", "shifted", "remixed"):
        report = drift(engine, current)
        now = week_rows(current)
        # Numeric: deciles of the reference (its grid is exact at this size), open outer bins.
        edges = np.quantile(base["amount"], np.arange(1, 10) / 10)
        ref_counts = np.diff(
            np.r_[0, np.searchsorted(np.sort(base["amount"]), edges, "right"), ROWS]
        )
        cur_counts = np.diff(
            np.r_[0, np.searchsorted(np.sort(now["amount"]), edges, "right"), ROWS]
        )
        assert report.features[0].psi == pytest.approx(psi(ref_counts, cur_counts), rel=1e-9)
        ref_mix = base["channel"].value_counts().reindex(CHANNELS).to_numpy()
        cur_mix = now["channel"].value_counts().reindex(CHANNELS).to_numpy()
        assert report.features[1].psi == pytest.approx(psi(ref_mix, cur_mix), rel=1e-9)


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    ref = np.maximum(reference / reference.sum(), PSI_EPSILON)
    cur = np.maximum(current / current.sum(), PSI_EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def test_a_saved_dataset_as_reference(engine: SupportsStatistics, repo: Path) -> None:
    saved = week_rows("base")[["amount", "channel"]].rename(columns=lambda c: f"payments__{c}")
    path = repo / "dataset.parquet"
    pq.write_table(pa.Table.from_pandas(saved, preserve_index=False), path)
    reference = engine.file_statistics(
        str(path), {"payments__amount": Float64, "payments__channel": String}
    )
    mapping = {"amount": "payments__amount", "channel": "payments__channel"}
    start, end = window("shifted")
    current = engine.view_statistics(
        PAYMENTS,
        start_us=start,
        end_us=end,
        reference={f: reference.columns[c] for f, c in mapping.items()},
    )
    report = compare(
        reference,
        current,
        mapping,
        view="payments",
        reference_label="dataset base",
        current_label="week shifted",
        thresholds=DriftThresholds(),
    )
    assert report.drifted_features == ["amount"]
    assert report.features[0].psi == drift(engine, "shifted").features[0].psi


def test_turned_off_tests_flag_nothing(engine: SupportsStatistics) -> None:
    report = drift(engine, "shifted", DriftThresholds(psi=0, ks=None, chi2_p_value=0))
    assert not report.drifted
    assert report.features[0].ks is not None  # still computed and reported


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"psi": -0.1}, "psi=-0.1"),
        ({"ks": 1.5}, "ks=1.5"),
        ({"chi2_p_value": float("nan")}, "chi2_p_value=nan"),
        ({"ks": True}, "ks=True"),
    ],
)
def test_invalid_thresholds_are_refused(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(QualityError, match=message):
        DriftThresholds(**arguments)


def test_current_profile_must_be_probed_on_the_reference(engine: SupportsStatistics) -> None:
    reference, _ = profiles(engine, "same")
    start, end = window("same")
    unprobed = engine.view_statistics(PAYMENTS, start_us=start, end_us=end)
    with pytest.raises(QualityError, match=r"feature 'amount'.*reference="):
        compare(
            reference,
            unprobed,
            COLUMNS,
            view="payments",
            reference_label="a",
            current_label="b",
            thresholds=DriftThresholds(),
        )
    with pytest.raises(QualityError, match="no column 'nope' for feature 'amount'"):
        compare(
            reference,
            unprobed,
            {"amount": "nope"},
            view="payments",
            reference_label="a",
            current_label="b",
            thresholds=DriftThresholds(),
        )


def test_a_feature_with_no_current_value_drifts(engine: SupportsStatistics, repo: Path) -> None:
    start, end = window("base")
    reference = engine.view_statistics(PAYMENTS, start_us=start, end_us=end)
    empty = pd.DataFrame(
        {"amount": pd.Series([None, None], dtype="float64"), "channel": ["a", "b"]}
    )
    path = repo / "nulls.parquet"
    pq.write_table(pa.Table.from_pandas(empty, preserve_index=False), path)
    current = engine.file_statistics(
        str(path), {"amount": Float64, "channel": String}, reference=reference.columns
    )
    report = compare(
        reference,
        current,
        COLUMNS,
        view="payments",
        reference_label="a",
        current_label="b",
        thresholds=DriftThresholds(),
    )
    amount, channel = report.features
    assert amount.drifted
    assert amount.psi is None
    assert "no value in the current rows" in amount.reasons[0]
    # Values never seen in the reference all land in the "(other)" bin.
    assert channel.bins[-1] == {"label": "(other)", "reference_share": 0.0, "current_share": 1.0}
    assert channel.drifted


def test_report_serializes_and_reads(engine: SupportsStatistics) -> None:
    report = drift(engine, "shifted")
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["drifted_features"] == ["amount"]
    assert data["thresholds"] == {"psi": 0.2, "ks": 0.1, "chi2_p_value": 0.01, "null_rate": 0.1}
    assert len(data["features"][0]["bins"]) == 10
    summary = report.summary()
    assert "amount" in summary
    assert "channel" in summary
    assert "1 of 2 features drifted: amount" in summary


@pytest.mark.parametrize("a", [0.5, 1.0, 2.5, 10.0, 150.0])
@pytest.mark.parametrize("x", [0.0, 0.01, 0.7, 3.0, 12.0, 160.0, 900.0])
def test_regularized_upper_gamma_matches_scipy(a: float, x: float) -> None:
    assert regularized_upper_gamma(a, x) == pytest.approx(
        special.gammaincc(a, x), rel=1e-10, abs=1e-300
    )


def test_chi_square_p_value_matches_scipy() -> None:
    for statistic, dof in ((0.5, 1), (3.84, 1), (20.0, 5), (300.0, 99)):
        assert chi_square_p_value(statistic, dof) == pytest.approx(
            stats.chi2.sf(statistic, dof), rel=1e-10
        )
    assert chi_square_p_value(4.0, 0) == 1.0
