"""Drift plots: reference vs current shares per bin, one chart per feature.

    write_drift_plot(report, "drift.html")   # one self-contained page: inline SVG, no script
    write_drift_plot(report, "drift.png")    # matplotlib (the `quality` extra), Agg backend

The bins are the ones the drift metrics were computed on (:attr:`FeatureDrift.bins`): the
reference's deciles for numeric features, its categories (and the rest) for categorical ones.
"""

from __future__ import annotations

import html
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from featurestore.errors import ExtraNotInstalledError, QualityError
from featurestore.quality.drift import DriftReport, FeatureDrift

#: Colours of the two sides, in both formats.
REFERENCE_COLOUR = "#4c78a8"
CURRENT_COLOUR = "#f58518"
#: PNG geometry: inches per feature row, width in inches, dots per inch.
PNG_ROW_INCHES = 3.0
PNG_WIDTH_INCHES = 10.0
PNG_DPI = 100

_BAR = 14  # SVG: width of one bar, in pixels
_GAP = 10  # SVG: space between two bins
_PLOT_HEIGHT = 160
_TOP, _BOTTOM, _LEFT, _RIGHT = 12, 100, 90, 12


def write_drift_plot(report: DriftReport, path: str | os.PathLike[str]) -> Path:
    """Write the report's histograms to ``path``; its extension (``.html`` or ``.png``) picks
    the format. Returns the path written."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".html":
        content: bytes = drift_html(report).encode("utf-8")
    elif suffix == ".png":
        content = drift_png(report)
    else:
        raise QualityError(
            f"drift plot of {report.view}: cannot write {str(target)!r}; name the file "
            "*.html (a self-contained page) or *.png (an image)"
        )
    try:
        target.write_bytes(content)
    except OSError as exc:
        raise QualityError(
            f"drift plot of {report.view}: cannot write {str(target)!r}: {exc.strerror or exc}"
        ) from exc
    return target


# -- HTML -------------------------------------------------------------------------------------------


def drift_html(report: DriftReport) -> str:
    """The report as one HTML page with an inline SVG bar chart per feature."""
    esc = html.escape
    drifted = report.drifted_features
    verdict = (
        f"{len(drifted)} of {len(report.features)} features drifted: {', '.join(drifted)}"
        if drifted
        else f"none of {len(report.features)} features drifted"
    )
    sections = "\n".join(_feature_section(f) for f in report.features)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Drift of {esc(report.view)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
section {{ border-top: 1px solid #ddd; padding: 1em 0; }}
.badge {{ display: inline-block; padding: 0.1em 0.6em; border-radius: 0.8em; color: #fff;
         font-size: 0.85em; margin-left: 0.5em; }}
.drifted {{ background: #c0392b; }}
.stable {{ background: #27ae60; }}
.metrics {{ color: #555; }}
.legend span {{ display: inline-block; width: 0.9em; height: 0.9em; margin: 0 0.3em 0 1em; }}
</style>
</head>
<body>
<h1>Drift of {esc(report.view)}</h1>
<p>Reference: {esc(report.reference)}<br>Current: {esc(report.current)}<br>
Drifted when {esc(report.thresholds.describe())}.</p>
<p><strong>{esc(verdict)}</strong></p>
<p class="legend">Share of non-null values per bin:
<span style="background:{REFERENCE_COLOUR}"></span>reference
<span style="background:{CURRENT_COLOUR}"></span>current</p>
{sections}
</body>
</html>
"""


def _metrics(feature: FeatureDrift) -> str:
    parts = []
    if feature.psi is not None:
        parts.append(f"PSI {feature.psi:.4f}")
    if feature.ks is not None:
        parts.append(f"KS {feature.ks:.4f}")
    if feature.chi2 is not None:
        parts.append(
            f"chi-square {feature.chi2:.4g} (dof {feature.chi2_dof}, p {feature.chi2_p_value:.3g})"
        )
    parts.append(f"nulls {feature.reference_null_rate:.1%} -> {feature.current_null_rate:.1%}")
    return " · ".join(parts)


def _feature_section(feature: FeatureDrift) -> str:
    esc = html.escape
    badge = (
        '<span class="badge drifted">drifted</span>'
        if feature.drifted
        else '<span class="badge stable">stable</span>'
    )
    reasons = f"<p>{esc('; '.join(feature.reasons))}</p>" if feature.reasons else ""
    chart = _svg(feature.feature, feature.bins) if feature.bins else "<p>No bins to draw.</p>"
    return (
        f'<section id="feature-{esc(feature.feature)}">\n'
        f"<h2>{esc(feature.feature)} <small>({esc(feature.kind)})</small>{badge}</h2>\n"
        f'<p class="metrics">{esc(_metrics(feature))}</p>\n{reasons}{chart}\n</section>'
    )


def _svg(name: str, bins: Sequence[dict[str, Any]]) -> str:
    esc = html.escape
    top = max(max(b["reference_share"], b["current_share"]) for b in bins) or 1.0
    slot = 2 * _BAR + _GAP
    width = _LEFT + slot * len(bins) + _RIGHT
    height = _TOP + _PLOT_HEIGHT + _BOTTOM
    base = _TOP + _PLOT_HEIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{esc(name)}: reference vs current share per bin">',
        f'<line x1="{_LEFT}" y1="{base}" x2="{width - _RIGHT}" y2="{base}" stroke="#999"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 4}" font-size="10" text-anchor="end">{top:.0%}</text>',
        f'<text x="{_LEFT - 4}" y="{base}" font-size="10" text-anchor="end">0%</text>',
    ]
    for i, b in enumerate(bins):
        x = _LEFT + i * slot + _GAP / 2
        label = str(b["label"])
        for offset, key, colour, side in (
            (0, "reference_share", REFERENCE_COLOUR, "reference"),
            (_BAR, "current_share", CURRENT_COLOUR, "current"),
        ):
            share = float(b[key])
            bar = _PLOT_HEIGHT * share / top
            parts.append(
                f'<rect class="bar {side}" x="{x + offset:.1f}" y="{base - bar:.1f}" '
                f'width="{_BAR}" height="{bar:.1f}" fill="{colour}">'
                f"<title>{esc(label)}: {side} {share:.2%}</title></rect>"
            )
        centre = x + _BAR
        parts.append(
            f'<text x="{centre:.1f}" y="{base + 10}" font-size="10" text-anchor="end" '
            f'transform="rotate(-45 {centre:.1f} {base + 10})">{esc(_clip(label))}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _clip(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


# -- PNG --------------------------------------------------------------------------------------------


def drift_png(report: DriftReport) -> bytes:
    """The report as a PNG image: one bar chart per feature, stacked vertically."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ExtraNotInstalledError(
            f"drift plot of {report.view}: PNG plots need matplotlib; "
            "pip install 'featurestore[quality]' (or write an .html plot, which needs nothing)"
        ) from None
    rows = max(1, len(report.features))
    # The object API (no pyplot) draws with Agg without touching matplotlib's global backend.
    figure = Figure(
        figsize=(PNG_WIDTH_INCHES, PNG_ROW_INCHES * rows), dpi=PNG_DPI, layout="constrained"
    )
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 1, squeeze=False)[:, 0]
    if not report.features:
        axes[0].text(0.5, 0.5, "no features compared", ha="center", va="center")
        axes[0].set_axis_off()
    for ax, feature in zip(axes, report.features, strict=False):
        _draw_feature(ax, feature)
    # One line per side: window labels are long and would run off the figure on one line.
    figure.suptitle(
        f"drift of {report.view}\nreference: {report.reference}\ncurrent: {report.current}",
        fontsize="medium",
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PNG_DPI)
    return buffer.getvalue()


def _draw_feature(ax: Any, feature: FeatureDrift) -> None:
    state = "DRIFTED" if feature.drifted else "stable"
    ax.set_title(f"{feature.feature} ({feature.kind}), {state}: {_metrics(feature)}", fontsize=9)
    if not feature.bins:
        ax.text(0.5, 0.5, "; ".join(feature.reasons), ha="center", va="center", fontsize=8)
        ax.set_axis_off()
        return
    positions = list(range(len(feature.bins)))
    width = 0.4
    ax.bar(
        [p - width / 2 for p in positions],
        [b["reference_share"] for b in feature.bins],
        width,
        label="reference",
        color=REFERENCE_COLOUR,
    )
    ax.bar(
        [p + width / 2 for p in positions],
        [b["current_share"] for b in feature.bins],
        width,
        label="current",
        color=CURRENT_COLOUR,
    )
    ax.set_xticks(positions)
    ax.set_xticklabels(
        [_clip(str(b["label"])) for b in feature.bins], rotation=45, ha="right", fontsize=7
    )
    ax.set_ylabel("share")
    ax.legend(fontsize=7)
