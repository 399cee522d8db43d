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

from functools import partial
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from featurestore.config_types import Section


def _non_negative(value: object, zero: str = "0 turns the test off") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"must be a number >= 0 ({zero}), got {value!r}")
    return float(value)


def _fraction(value: object) -> float:
    number = _non_negative(value)
    if number > 1:
        raise ValueError(f"must be between 0 and 1, got {value!r}")
    return number


_FRACTION_SCHEMA = WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1})
#: A number in [0, 1]; ``0`` turns a drift test off.
Fraction = Annotated[float, BeforeValidator(_fraction), _FRACTION_SCHEMA]
#: A number >= 0; ``0`` turns a drift test off.
Threshold = Annotated[
    float, BeforeValidator(_non_negative), WithJsonSchema({"type": "number", "minimum": 0})
]


class DriftSettings(Section):
    """Drift thresholds (see the module docstring); ``0`` disables a test."""

    example = "{psi: 0.2, ks: 0.1}"
    psi: Threshold = 0.2
    ks: Fraction = 0.1
    chi2_p_value: Fraction = 0.01
    null_rate: Fraction = 0.1


class QualityConfig(Section):
    """Project-wide quality defaults; a view's own ``Validation`` overrides mode and null rate."""

    example = "{mode: warn}"
    mode: Literal["warn", "strict"] = "warn"
    max_null_rate: Fraction = 0.5
    push_flush_seconds: Annotated[
        float,
        BeforeValidator(partial(_non_negative, zero="seconds; 0 records every push")),
        WithJsonSchema({"type": "number", "minimum": 0}),
    ] = 10.0
    drift: DriftSettings = Field(default_factory=DriftSettings)
