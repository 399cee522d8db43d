"""The ``quality`` section of ``featurestore.yaml``: defaults for validation and drift.

    quality:
      mode: warn              # views without a Validation of their own: warn (default) or strict
      max_null_rate: 0.5      # quick check: a feature with more nulls (or NaN) than this fails
      push_flush_seconds: 10  # passing push validations are recorded together this often
      drift: {psi: 0.2, ks: 0.1, chi2_p_value: 0.01, null_rate: 0.1}

A feature drifts when its population stability index is at least ``psi`` (numeric and
categorical features), its Kolmogorov-Smirnov statistic at least ``ks`` (numeric), its
chi-square test's p-value below ``chi2_p_value`` (categorical) or its share of nulls moved by
``null_rate`` or more. ``0`` turns a test off.
The defaults are the usual rules of thumb: PSI 0.1-0.2 is a moderate shift and above 0.2 a
significant one; a KS distance of 0.1 means the two cumulative distributions differ by ten
percentage points somewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from featurestore.errors import ConfigError

MODES = ("warn", "strict")


@dataclass(frozen=True)
class DriftSettings:
    """Drift thresholds (see the module docstring); ``0`` disables a test."""

    psi: float = 0.2
    ks: float = 0.1
    chi2_p_value: float = 0.01
    null_rate: float = 0.1


@dataclass(frozen=True)
class QualityConfig:
    """Project-wide quality defaults; a view's own ``Validation`` overrides mode and null rate."""

    mode: str = "warn"
    max_null_rate: float = 0.5
    push_flush_seconds: float = 10.0
    drift: DriftSettings = field(default_factory=DriftSettings)


def parse_quality(value: object, source: str) -> QualityConfig:
    """Validate the ``quality`` mapping of ``featurestore.yaml`` (``None``: the defaults)."""
    if value is None:
        return QualityConfig()
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: 'quality' must be a mapping like {{mode: warn}}")
    _known(value, {"mode", "max_null_rate", "push_flush_seconds", "drift"}, f"{source}: quality")
    mode = value.get("mode", QualityConfig.mode)
    if mode not in MODES:
        raise ConfigError(f"{source}: quality.mode must be 'warn' or 'strict', got {mode!r}")
    max_null_rate = _fraction(
        value.get("max_null_rate", QualityConfig.max_null_rate), f"{source}: quality.max_null_rate"
    )
    flush = _non_negative(
        value.get("push_flush_seconds", QualityConfig.push_flush_seconds),
        f"{source}: quality.push_flush_seconds",
        "seconds; 0 records every push",
    )
    return QualityConfig(
        mode=mode,
        max_null_rate=max_null_rate,
        push_flush_seconds=flush,
        drift=_drift(value.get("drift"), source),
    )


def _drift(value: object, source: str) -> DriftSettings:
    if value is None:
        return DriftSettings()
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: quality.drift must be a mapping like {{psi: 0.2, ks: 0.1}}")
    _known(value, {"psi", "ks", "chi2_p_value", "null_rate"}, f"{source}: quality.drift")
    defaults = DriftSettings()
    psi = _non_negative(value.get("psi", defaults.psi), f"{source}: quality.drift.psi")
    ks = _fraction(value.get("ks", defaults.ks), f"{source}: quality.drift.ks")
    p_value = _fraction(
        value.get("chi2_p_value", defaults.chi2_p_value), f"{source}: quality.drift.chi2_p_value"
    )
    null_rate = _fraction(
        value.get("null_rate", defaults.null_rate), f"{source}: quality.drift.null_rate"
    )
    return DriftSettings(psi=psi, ks=ks, chi2_p_value=p_value, null_rate=null_rate)


def _known(value: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(known)}")


def _non_negative(value: object, what: str, zero: str = "0 turns the test off") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{what} must be a number >= 0 ({zero}), got {value!r}")
    return float(value)


def _fraction(value: object, what: str) -> float:
    number = _non_negative(value, what)
    if number > 1:
        raise ConfigError(f"{what} must be between 0 and 1, got {value!r}")
    return number
