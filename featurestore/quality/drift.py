"""Drift detection: how far a feature's current distribution moved from a reference one.

Computed from two profiles only (:mod:`featurestore.quality.profile`), never from the rows: the
reference's statistics (a saved training set's, or a reference window's) and the current window's
statistics profiled *against* that reference, which holds the exact counts of the current values on
the reference's grid (numeric) or categories (categorical).

Per feature, with the default :class:`DriftThresholds`:

* **PSI** (population stability index, numeric and categorical):
  ``sum((cur - ref) * ln(cur / ref))`` over bins of shares of non-null values, each share floored
  at :data:`PSI_EPSILON` (``1e-4``) so an empty bin counts as a small one instead of an infinite
  term. Numeric bins are the reference's deciles: edges at its grid points 10, 20, ..., 90,
  open-ended outer bins, equal edges merged (a column with few values has fewer bins).
  Categorical bins are the reference's categories plus an ``other`` bin for the rest. The usual
  reading: below 0.1 stable, 0.1 to 0.2 a moderate shift, 0.2 or more (the default threshold) a
  significant shift.
* **KS** (numeric): the Kolmogorov-Smirnov statistic ``max |F_ref(x) - F_cur(x)|`` between the
  two empirical distribution functions, evaluated at the reference's 101 percentile points.
  It can miss the exact two-sample statistic only by the mass either side puts strictly between
  two adjacent points: about 1% for the reference, more where the current data piles up between
  two of them. Default threshold 0.1: a tenth of the values moved across some point.
* **chi-square** (categorical): the test of homogeneity on the 2 x k table of counts (reference
  and current, over the same bins as PSI; all-zero bins dropped), ``dof = k - 1``; the p-value
  comes from the regularized upper incomplete gamma function. Default threshold: drift when
  ``p < 0.01``. With millions of rows even a negligible change is significant, so PSI is the
  better guide on large windows; set ``chi2_p_value`` to 0 to turn the test off.

* **null rate** (all features): the change of the share of nulls, in absolute terms. Default
  threshold: drift when it moved by 0.1 or more (10% of the rows went null, or came back).

Nulls are not part of the distributions above; the null-rate test watches them. A feature whose
current rows hold no value while the reference's did is reported as drifted.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from featurestore.errors import QualityError
from featurestore.quality.profile import NUMERIC, ColumnStats, TableProfile

#: Floor on each bin's share in the PSI sum (an empty bin would make the term infinite).
PSI_EPSILON = 1e-4
#: Grid indices of the reference's deciles: the inner edges of the numeric PSI bins.
DECILES = tuple(range(10, 100, 10))


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature counts as drifted; ``0`` or ``None`` turns a test off.

    A feature drifts when ``PSI >= psi`` (numeric and categorical), or ``KS >= ks`` (numeric),
    or the chi-square p-value ``< chi2_p_value`` (categorical). Defaults: 0.2, 0.1 and 0.01.
    """

    psi: float | None = 0.2
    ks: float | None = 0.1
    chi2_p_value: float | None = 0.01
    null_rate: float | None = 0.1

    def __post_init__(self) -> None:
        for name, highest in (
            ("psi", None),
            ("ks", 1.0),
            ("chi2_p_value", 1.0),
            ("null_rate", 1.0),
        ):
            value = getattr(self, name)
            if value is None:
                continue
            valid = isinstance(value, int | float) and not isinstance(value, bool)
            if not valid or not math.isfinite(value) or value < 0:
                raise QualityError(
                    f"drift threshold {name}={value!r} is invalid: use a number >= 0 "
                    "(0 or None turns the test off)"
                )
            if highest is not None and value > highest:
                raise QualityError(
                    f"drift threshold {name}={value!r} is invalid: it is a fraction, "
                    f"between 0 and {highest:g} (0 or None turns the test off)"
                )

    def to_dict(self) -> dict[str, float | None]:
        """The thresholds as a JSON-safe dict."""
        return {
            "psi": self.psi,
            "ks": self.ks,
            "chi2_p_value": self.chi2_p_value,
            "null_rate": self.null_rate,
        }

    def describe(self) -> str:
        """One line, e.g. ``PSI >= 0.2, KS >= 0.1, chi-square p < 0.01``."""
        parts = []
        if self.psi:
            parts.append(f"PSI >= {self.psi:g}")
        if self.ks:
            parts.append(f"KS >= {self.ks:g}")
        if self.chi2_p_value:
            parts.append(f"chi-square p < {self.chi2_p_value:g}")
        if self.null_rate:
            parts.append(f"null rate moved >= {self.null_rate:g}")
        return ", ".join(parts) or "every test turned off"


@dataclass(frozen=True)
class FeatureDrift:
    """The drift metrics of one feature and why it counts as drifted (``reasons``).

    ``ks`` is ``None`` for categorical features, ``chi2*`` for numeric ones; all metrics are
    ``None`` when one side has no value to compare. ``bins`` (for plots) list each bin's
    ``label``, ``reference_share`` and ``current_share`` of the non-null values; a
    ``redacted`` feature has none (its bin edges and categories are values its reader may not
    see, or that an erasure scrubbed; see :mod:`featurestore.quality.redaction`).
    """

    feature: str
    kind: str
    psi: float | None
    ks: float | None
    chi2: float | None
    chi2_dof: int | None
    chi2_p_value: float | None
    reference_rows: int
    current_rows: int
    reference_null_rate: float
    current_null_rate: float
    drifted: bool
    reasons: list[str] = field(default_factory=list)
    bins: list[dict[str, Any]] = field(default_factory=list)
    redacted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "feature": self.feature,
            "kind": self.kind,
            "psi": self.psi,
            "ks": self.ks,
            "chi2": self.chi2,
            "chi2_dof": self.chi2_dof,
            "chi2_p_value": self.chi2_p_value,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "reference_null_rate": self.reference_null_rate,
            "current_null_rate": self.current_null_rate,
            "drifted": self.drifted,
            "reasons": list(self.reasons),
            "bins": [dict(b) for b in self.bins],
            "redacted": self.redacted,
        }


@dataclass(frozen=True)
class DriftReport:
    """The drift of every compared feature of one view, between two labelled sides."""

    view: str
    reference: str
    current: str
    thresholds: DriftThresholds
    features: list[FeatureDrift]

    @property
    def drifted(self) -> bool:
        """Whether any feature drifted."""
        return any(f.drifted for f in self.features)

    @property
    def drifted_features(self) -> list[str]:
        """Names of the drifted features, in report order."""
        return [f.feature for f in self.features if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "view": self.view,
            "reference": self.reference,
            "current": self.current,
            "thresholds": self.thresholds.to_dict(),
            "drifted": self.drifted,
            "drifted_features": self.drifted_features,
            "features": [f.to_dict() for f in self.features],
        }

    def summary(self) -> str:
        """A plain-text table, one line per feature."""
        lines = [
            f"drift of {self.view}: reference {self.reference}, current {self.current}",
            f"drifted when {self.thresholds.describe()}",
            f"{'feature':<24} {'kind':<11} {'PSI':>8} {'KS':>7} {'chi2 p':>9} "
            f"{'nulls ref -> cur':>18}  drifted",
        ]
        for f in self.features:
            nulls = f"{f.reference_null_rate:.1%} -> {f.current_null_rate:.1%}"
            lines.append(
                f"{f.feature:<24} {f.kind:<11} {_number(f.psi, '.4f'):>8} "
                f"{_number(f.ks, '.4f'):>7} {_number(f.chi2_p_value, '.3g'):>9} {nulls:>18}  "
                + ("YES: " + "; ".join(f.reasons) if f.drifted else "no")
            )
        drifted = self.drifted_features
        lines.append(
            f"{len(drifted)} of {len(self.features)} features drifted"
            + (f": {', '.join(drifted)}" if drifted else "")
        )
        return "\n".join(lines)


def compare(
    reference: TableProfile,
    current: TableProfile,
    columns: Mapping[str, str],
    *,
    view: str,
    reference_label: str,
    current_label: str,
    thresholds: DriftThresholds,
) -> DriftReport:
    """Compare each feature of ``columns`` (feature -> the reference's column holding it).

    ``current`` is keyed by feature name and must have been profiled with the reference's
    columns as ``reference=`` (so it holds the counts on the reference's bins); a feature it
    lacks, or that was not profiled that way, raises :class:`QualityError` naming it.
    """
    features = []
    for feature, column in columns.items():
        ref = reference.columns.get(column)
        cur = current.columns.get(feature)
        if ref is None:
            raise QualityError(
                f"drift of {view}: the reference {reference_label} has no column {column!r} "
                f"for feature {feature!r}"
            )
        if cur is None:
            raise QualityError(
                f"drift of {view}: the current statistics ({current_label}) lack feature "
                f"{feature!r}; profile it too"
            )
        features.append(_compare_feature(feature, ref, cur, view, thresholds))
    return DriftReport(
        view=view,
        reference=reference_label,
        current=current_label,
        thresholds=thresholds,
        features=features,
    )


def _compare_feature(
    feature: str, ref: ColumnStats, cur: ColumnStats, view: str, thresholds: DriftThresholds
) -> FeatureDrift:
    where = f"drift of {view}, feature {feature!r}"
    if ref.kind != cur.kind:
        raise QualityError(
            f"{where}: the reference holds {ref.kind} values ({ref.dtype}) and the current rows "
            f"{cur.kind} ones ({cur.dtype}); they cannot be compared"
        )
    numeric = ref.kind == NUMERIC
    probe = cur.probe_cumulative if numeric else cur.probe_categories
    expected = len(ref.grid) if numeric else len(ref.categories)
    if probe is None or len(probe) != expected:
        raise QualityError(
            f"{where}: the current statistics were not computed against this reference; "
            "profile the current window with the reference's columns as reference="
        )
    if numeric and ref.values and not ref.grid:
        raise QualityError(
            f"{where}: the reference statistics have no percentile grid; compute them again"
        )
    base: dict[str, Any] = {
        "feature": feature,
        "kind": ref.kind,
        "reference_rows": ref.rows,
        "current_rows": cur.rows,
        "reference_null_rate": ref.null_rate,
        "current_null_rate": cur.null_rate,
    }
    if ref.values == 0 or cur.values == 0:
        return _not_comparable(base, ref, cur, thresholds)
    if numeric:
        bins, ref_counts, cur_counts = _numeric_bins(ref, cur, probe)
        ks = max(
            abs(r / ref.values - c / cur.values) for r, c in zip(ref.cumulative, probe, strict=True)
        )
        chi2 = dof = p_value = None
    else:
        bins, ref_counts, cur_counts = _categorical_bins(ref, cur, probe)
        ks = None
        chi2, dof = chi_square(ref_counts, cur_counts)
        p_value = chi_square_p_value(chi2, dof)
    psi = population_stability_index(ref_counts, cur_counts)
    reasons = []
    if thresholds.psi and psi >= thresholds.psi:
        reasons.append(f"PSI {psi:.3f} >= {thresholds.psi:g}")
    if thresholds.ks and ks is not None and ks >= thresholds.ks:
        reasons.append(f"KS {ks:.3f} >= {thresholds.ks:g}")
    if thresholds.chi2_p_value and p_value is not None and p_value < thresholds.chi2_p_value:
        reasons.append(f"chi-square p-value {p_value:.3g} < {thresholds.chi2_p_value:g}")
    reasons += _null_rate_moved(ref, cur, thresholds)
    shares = [
        {"label": label, "reference_share": r / ref.values, "current_share": c / cur.values}
        for label, r, c in zip(bins, ref_counts, cur_counts, strict=True)
    ]
    return FeatureDrift(
        **base,
        psi=psi,
        ks=ks,
        chi2=chi2,
        chi2_dof=dof,
        chi2_p_value=p_value,
        drifted=bool(reasons),
        reasons=reasons,
        bins=shares,
    )


def _null_rate_moved(ref: ColumnStats, cur: ColumnStats, thresholds: DriftThresholds) -> list[str]:
    moved = abs(cur.null_rate - ref.null_rate)
    if thresholds.null_rate and moved >= thresholds.null_rate:
        return [
            f"null rate {ref.null_rate:.1%} -> {cur.null_rate:.1%} "
            f"(moved {moved:.3f} >= {thresholds.null_rate:g})"
        ]
    return []


def _not_comparable(
    base: dict[str, Any], ref: ColumnStats, cur: ColumnStats, thresholds: DriftThresholds
) -> FeatureDrift:
    if ref.values == 0:
        # Nothing to compare distributions with; a null rate that moved still counts.
        moved = _null_rate_moved(ref, cur, thresholds)
        drifted = bool(moved)
        reasons = ["not compared: the reference holds no value of it", *moved]
    else:
        drifted = True
        reasons = [
            f"no value in the current rows ({cur.rows:,} rows, all null) where the reference "
            f"has {ref.values:,}"
        ]
    return FeatureDrift(
        **base,
        psi=None,
        ks=None,
        chi2=None,
        chi2_dof=None,
        chi2_p_value=None,
        drifted=drifted,
        reasons=reasons,
        bins=[],
    )


def _numeric_bins(
    ref: ColumnStats, cur: ColumnStats, probe: Sequence[int]
) -> tuple[list[str], list[int], list[int]]:
    """Decile bins of the reference: labels and the counts of each side."""
    edges: list[float] = []
    ref_at: list[int] = []
    cur_at: list[int] = []
    for index in DECILES:
        edge = ref.grid[index]
        if edges and edge == edges[-1]:
            continue  # equal edges: the bin between them is empty on both sides by definition
        edges.append(edge)
        ref_at.append(ref.cumulative[index])
        cur_at.append(probe[index])
    ref_counts = _differences(ref_at, ref.values)
    cur_counts = _differences(cur_at, cur.values)
    labels = [f"<= {_short(edges[0])}"]
    labels += [f"({_short(a)}, {_short(b)}]" for a, b in itertools.pairwise(edges)]
    labels.append(f"> {_short(edges[-1])}")
    return labels, ref_counts, cur_counts


def _differences(cumulative: Sequence[int], total: int) -> list[int]:
    bounds = [0, *cumulative, total]
    return [b - a for a, b in itertools.pairwise(bounds)]


def _categorical_bins(
    ref: ColumnStats, cur: ColumnStats, probe: Sequence[int]
) -> tuple[list[str], list[int], list[int]]:
    labels = [value for value, _ in ref.categories]
    ref_counts = [count for _, count in ref.categories]
    cur_counts = list(probe)
    ref_other = ref.values - sum(ref_counts)
    cur_other = cur.values - sum(cur_counts)
    if ref_other or cur_other:
        labels.append("(other)")
        ref_counts.append(ref_other)
        cur_counts.append(cur_other)
    return labels, ref_counts, cur_counts


def population_stability_index(reference: Sequence[int], current: Sequence[int]) -> float:
    """PSI of two count vectors over the same bins (shares floored at :data:`PSI_EPSILON`)."""
    ref_total, cur_total = sum(reference), sum(current)
    psi = 0.0
    for r, c in zip(reference, current, strict=True):
        ref_share = max(r / ref_total, PSI_EPSILON)
        cur_share = max(c / cur_total, PSI_EPSILON)
        psi += (cur_share - ref_share) * math.log(cur_share / ref_share)
    return psi


def chi_square(reference: Sequence[int], current: Sequence[int]) -> tuple[float, int]:
    """Pearson's chi-square statistic of homogeneity of the 2 x k table, and its degrees of
    freedom ``k - 1`` (columns empty on both rows are dropped)."""
    kept = [(r, c) for r, c in zip(reference, current, strict=True) if r or c]
    ref_total = sum(r for r, _ in kept)
    cur_total = sum(c for _, c in kept)
    total = ref_total + cur_total
    if len(kept) < 2 or not ref_total or not cur_total:
        return 0.0, max(len(kept) - 1, 0)
    statistic = 0.0
    for r, c in kept:
        column = r + c
        for observed, row_total in ((r, ref_total), (c, cur_total)):
            expected = row_total * column / total
            statistic += (observed - expected) ** 2 / expected
    return statistic, len(kept) - 1


def chi_square_p_value(statistic: float, dof: int) -> float:
    """``P(X >= statistic)`` for ``X`` chi-square distributed with ``dof`` degrees of freedom
    (1.0 when ``dof`` is 0: nothing to test)."""
    if dof <= 0:
        return 1.0
    return regularized_upper_gamma(dof / 2.0, statistic / 2.0)


def regularized_upper_gamma(a: float, x: float) -> float:
    """``Q(a, x) = Γ(a, x) / Γ(a)`` for ``a > 0``, ``x >= 0``.

    Below ``x = a + 1`` the power series of the lower function ``P(a, x)`` converges fast and
    ``Q = 1 - P``; above it, the continued fraction of ``Q`` does (evaluated with Lentz's method).
    """
    if a <= 0:
        raise ValueError(f"regularized_upper_gamma needs a > 0, got {a}")
    if x <= 0:
        return 1.0
    # exp(-x) * x**a / Γ(a), in logs so large arguments do not overflow.
    scale = math.exp(-x + a * math.log(x) - math.lgamma(a))
    if x < a + 1:
        term = total = 1.0 / a
        n = 0
        while abs(term) > abs(total) * 1e-16 and n < 10_000:
            n += 1
            term *= x / (a + n)
            total += term
        return max(0.0, 1.0 - total * scale)
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    fraction = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        fraction *= step
        if abs(step - 1.0) < 1e-16:
            break
    return min(1.0, scale * fraction)


def _short(value: float) -> str:
    return f"{value:.4g}"


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
