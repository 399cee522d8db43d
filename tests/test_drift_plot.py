"""Drift plots: the HTML page parses and holds every feature's bars; the PNG is a real image of
the expected size. The report comes from the real engine and ``compare`` on generated data."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore import Entity, FeatureView, Field, FileSource
from featurestore.config import RepoConfig
from featurestore.errors import ExtraNotInstalledError, QualityError
from featurestore.offline.backends import open_offline_engine
from featurestore.offline.base import SupportsStatistics
from featurestore.quality.drift import DriftReport, DriftThresholds, compare
from featurestore.quality.plot import PNG_DPI, PNG_ROW_INCHES, PNG_WIDTH_INCHES, write_drift_plot
from featurestore.types import Float64, Int64, String

T0 = datetime(2026, 4, 6, tzinfo=UTC)
DAY = timedelta(days=1)
STORE = Entity(name="store", join_keys=["store_id"], value_type=Int64)
SALES = FeatureView(
    name="sales",
    entities=[STORE],
    schema=[Field(name="revenue", dtype=Float64), Field(name="region", dtype=String)],
    source=FileSource(path="data/sales.parquet"),
)


def day_rows(day: int, shift: float, regions: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(day)
    rows = 2_000
    return pd.DataFrame(
        {
            "store_id": rng.integers(1, 100, rows),
            "event_timestamp": T0 + day * DAY + pd.to_timedelta(rng.integers(0, 86_400, rows), "s"),
            "revenue": rng.gamma(2.0, 50.0, rows) + shift,
            "region": rng.choice(regions, rows),
        }
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> DriftReport:
    repo = tmp_path_factory.mktemp("plot")
    (repo / "data").mkdir()
    frame = pd.concat(
        [
            day_rows(0, 0.0, ["north", "south", "east <&> west"]),
            day_rows(1, 60.0, ["north", "south", "islands"]),
        ]
    )
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), repo / "data" / "sales.parquet"
    )
    engine = open_offline_engine(RepoConfig(project="t", repo_path=repo, registry="sqlite://"))
    assert isinstance(engine, SupportsStatistics)
    micros = [int((T0 + d * DAY).timestamp() * 1e6) for d in range(3)]
    reference = engine.view_statistics(SALES, start_us=micros[0], end_us=micros[1] - 1)
    current = engine.view_statistics(
        SALES, start_us=micros[1], end_us=micros[2] - 1, reference=reference.columns
    )
    return compare(
        reference,
        current,
        {"revenue": "revenue", "region": "region"},
        view="sales",
        reference_label="2026-04-06",
        current_label="2026-04-07",
        thresholds=DriftThresholds(),
    )


class Page(HTMLParser):
    """Collects the tags, the text, and the rectangles of each feature's chart."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.bars: dict[str, list[dict[str, str | None]]] = {}
        self.badges: list[str] = []
        self._section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "section":
            self._section = (attributes.get("id") or "").removeprefix("feature-")
            self.bars[self._section] = []
        if tag == "rect" and self._section is not None:
            self.bars[self._section].append(attributes)
        if tag == "span" and "badge" in (attributes.get("class") or ""):
            self.badges.append(attributes["class"] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_page_holds_every_feature_and_its_bars(report: DriftReport, tmp_path: Path) -> None:
    written = write_drift_plot(report, tmp_path / "drift.html")
    content = written.read_text(encoding="utf-8")
    page = Page()
    page.feed(content)
    page.close()
    assert "script" not in page.tags  # self-contained: no JavaScript
    assert "link" not in page.tags
    assert "https://" not in content
    assert page.tags.count("svg") == 2
    text = " ".join(page.text)
    for feature in report.features:
        bars = page.bars[feature.feature]
        assert len(bars) == 2 * len(feature.bins)
        sides = [b["class"] for b in bars]
        assert sides == ["bar reference", "bar current"] * len(feature.bins)
        heights = [float(b["height"] or 0) for b in bars]
        tallest = max(heights)
        # Bars are drawn to scale: the largest share fills the plot height.
        shares = [v for b in feature.bins for v in (b["reference_share"], b["current_share"])]
        for height, share in zip(heights, shares, strict=True):
            assert height == pytest.approx(tallest * share / max(shares), abs=0.06)
        assert feature.feature in text
    assert report.features[0].drifted
    assert report.features[1].drifted
    assert page.badges == ["badge drifted", "badge drifted"]
    assert "east <&> west" in text  # escaped in the page, intact once parsed
    assert "PSI" in text
    assert "KS" in text
    assert "chi-square" in text


def test_png_is_an_image_of_the_expected_size(report: DriftReport, tmp_path: Path) -> None:
    written = write_drift_plot(report, str(tmp_path / "drift.png"))
    assert written.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    image = matplotlib.image.imread(written)
    rows = len(report.features)
    assert image.shape[:2] == (
        round(PNG_ROW_INCHES * rows * PNG_DPI),
        round(PNG_WIDTH_INCHES * PNG_DPI),
    )
    # Not blank: the bars' colours are there.
    assert len(np.unique(image.reshape(-1, image.shape[2]), axis=0)) > 10


def test_png_without_matplotlib_names_the_extra(
    report: DriftReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulates an install without the `quality` extra: the import of matplotlib fails.
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ExtraNotInstalledError, match=r"pip install 'featurestore\[quality\]'"):
        write_drift_plot(report, tmp_path / "drift.png")
    assert not (tmp_path / "drift.png").exists()
    # HTML plots need nothing beyond the standard library.
    assert write_drift_plot(report, tmp_path / "drift.html").exists()


def test_unknown_extension_and_unwritable_path(report: DriftReport, tmp_path: Path) -> None:
    with pytest.raises(QualityError, match=r"drift plot of sales.*\.html.*\.png"):
        write_drift_plot(report, tmp_path / "drift.svg")
    with pytest.raises(QualityError, match="cannot write"):
        write_drift_plot(report, tmp_path / "missing" / "drift.html")
