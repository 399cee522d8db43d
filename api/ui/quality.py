"""The View page's quality sections as JSON: statistics with bounded histograms, drift history
with its bins, validation history; each paged, each without the features the reader may not see.
"""

from __future__ import annotations

from typing import Any

from api.ui.visibility import Visibility, kwarg_columns
from featurestore.quality.history import StoredStatistics
from featurestore.quality.profile import ColumnStats
from featurestore.store import FeatureStore

__all__ = ["drift_page", "histogram", "statistics_page", "validations_page"]

#: At most this many bars in a histogram, categories in a bar chart, bins in a drift plot.
MAX_BARS = 20


def statistics_page(
    store: FeatureStore, seen: Visibility, view: str, *, offset: int, limit: int
) -> dict[str, Any]:
    """Recorded statistics of ``view``, newest first, ``limit`` windows from ``offset``."""
    found = store.statistics_history(view, limit=offset + limit + 1, principal=seen.who)
    newest = list(reversed(found))
    page = newest[offset : offset + limit]
    return {
        "view": view,
        "offset": offset,
        "more": len(newest) > offset + limit,
        "statistics": [_statistics(stats, seen) for stats in page],
    }


def _statistics(stats: StoredStatistics, seen: Visibility) -> dict[str, Any]:
    columns = []
    for name, column in stats.profile.columns.items():
        held = stats.features.get(name)
        if held is None or not seen.visible(held["view"], held["feature"]):
            continue
        columns.append(_column(column))
    return {
        "id": stats.id,
        "version": stats.version,
        "window_start": None if stats.window_start is None else stats.window_start.isoformat(),
        "window_end": None if stats.window_end is None else stats.window_end.isoformat(),
        "computed_at": stats.computed_at.isoformat(),
        "rows": stats.profile.rows,
        "columns": columns,
    }


def _column(column: ColumnStats) -> dict[str, Any]:
    return {
        "name": column.name,
        "kind": column.kind,
        "dtype": column.dtype,
        "rows": column.rows,
        "nulls": column.nulls,
        "null_rate": column.null_rate,
        "distinct": column.distinct,
        "min": column.min,
        "max": column.max,
        "mean": column.mean,
        "stddev": column.stddev,
        "quantiles": column.quantiles,
        "redacted": column.redacted,
        "histogram": [] if column.redacted else histogram(column),
    }


def histogram(column: ColumnStats) -> list[dict[str, Any]]:
    """At most :data:`MAX_BARS` bars: equal-width bins over [min, max] for a numeric column
    (counts from its cumulative grid), the largest categories for a categorical one."""
    if column.categories:
        return [{"label": str(k), "count": n} for k, n in column.categories[:MAX_BARS]]
    grid, cumulative = column.grid, column.cumulative
    if len(grid) < 2 or len(cumulative) != len(grid):
        return []
    low, high = float(grid[0]), float(grid[-1])
    bars = MAX_BARS if high > low else 1
    width = (high - low) / bars or 1.0
    counts = [0] * bars
    counts[0] += int(cumulative[0])
    for i in range(1, len(grid)):
        # The values in (grid[i-1], grid[i]] fall in the bin of grid[i].
        index = min(int((float(grid[i]) - low) / width), bars - 1)
        counts[index] += int(cumulative[i]) - int(cumulative[i - 1])
    return [
        {"low": low + i * width, "high": low + (i + 1) * width, "count": count}
        for i, count in enumerate(counts)
    ]


def drift_page(
    store: FeatureStore, seen: Visibility, view: str, *, offset: int, limit: int
) -> dict[str, Any]:
    """Recorded drift reports of ``view``, newest first, with each feature's bins (capped)."""
    found = store.drift_history(view, limit=offset + limit + 1, principal=seen.who)
    newest = list(reversed(found))
    reports = []
    for record in newest[offset : offset + limit]:
        features = [
            {**feature, "bins": feature.get("bins", [])[:MAX_BARS]}
            for feature in record.get("features", [])
            if seen.visible(view, feature["feature"])
        ]
        reports.append(
            {
                **record,
                "features": features,
                "drifted_features": [
                    f for f in record.get("drifted_features", []) if seen.visible(view, f)
                ],
            }
        )
    return {
        "view": view,
        "offset": offset,
        "more": len(newest) > offset + limit,
        "drift": reports,
    }


def validations_page(
    store: FeatureStore, seen: Visibility, view: str, *, offset: int, limit: int
) -> dict[str, Any]:
    """Recorded validations of ``view``, newest first, without checks on hidden features."""
    found = store.validation_history(view, limit=offset + limit + 1, principal=seen.who)
    newest = list(reversed(found))
    hidden = seen.hidden(view)
    results = []
    for result in newest[offset : offset + limit]:
        data = result.to_dict()
        data["checks"] = [
            check
            for check in data.get("checks", [])
            if check.get("column") not in hidden
            and not any(c in hidden for c in kwarg_columns(check.get("kwargs", {})))
        ]
        results.append(data)
    return {
        "view": view,
        "offset": offset,
        "more": len(newest) > offset + limit,
        "validations": results,
    }
