"""The quality layer: validation (quick checks and Great Expectations suites), statistics and
drift detection. Great Expectations is optional (the ``quality`` extra).

Public names: :class:`Validation` (declared on a feature view) and :class:`DriftThresholds`.
The rest is reached through the facade (``store.validate``, ``store.statistics``,
``store.drift``); see docs/quality.md.
"""

from featurestore.quality.drift import DriftThresholds
from featurestore.quality.validation import Validation

__all__ = ["DriftThresholds", "Validation"]
