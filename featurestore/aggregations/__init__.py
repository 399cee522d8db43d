"""Windowed aggregations: the semantics every offline engine and online store share.

:data:`FUNCTIONS` is the table of functions (accepted columns, result types, empty-window
values); :func:`window_label` names windows in feature names. The definition object,
:class:`~featurestore.Aggregation`, lives in :mod:`featurestore.definitions.aggregation`;
:mod:`featurestore.aggregations.plan` is the offline plan every engine follows (tiles and edges).
"""

from featurestore.aggregations.functions import (
    APPROX_COUNT_DISTINCT_RELATIVE_ERROR,
    APPROX_PERCENTILE_RANK_ERROR,
    FUNCTIONS,
    AggFunction,
    window_label,
)

__all__ = [
    "APPROX_COUNT_DISTINCT_RELATIVE_ERROR",
    "APPROX_PERCENTILE_RANK_ERROR",
    "FUNCTIONS",
    "AggFunction",
    "window_label",
]
