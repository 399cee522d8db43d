"""Which view versions an apply created that have nothing online yet.

A new version of a view has its own online namespace (see :class:`featurestore.online.Namespace`),
empty until it is materialized: lookups of it answer ``NOT_FOUND`` for every key, which looks like
missing data rather than a step left to do. ``apply`` says so instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from featurestore.definitions.base import Definition
from featurestore.definitions.feature_view import FeatureView
from featurestore.registry import Plan, Registry


def unmaterialized_warnings(
    plan: Plan,
    objects: Sequence[Definition],
    registry: Registry,
    project: str,
    online_store: str,
) -> list[str]:
    """One warning per online view version ``plan`` added or changed that ``online_store`` (an
    online store identity) has no materialization of yet."""
    online_views = {o.name for o in objects if isinstance(o, FeatureView) and o.online}
    warnings: list[str] = []
    for change in plan.changes:
        version = change.new_version
        if change.kind != "feature_view" or change.change not in {"added", "changed"}:
            continue
        if version is None or change.name not in online_views:
            continue
        # A restored version keeps its watermark (and its online rows): nothing to say then.
        mark = registry.get_watermark(project, change.name, version, online_store=online_store)
        if mark is None:
            warnings.append(
                f"feature view {change.name!r} v{version} has nothing in the online store yet, "
                "so online lookups of it answer NOT_FOUND: run materialize "
                "(featurestore materialize-incremental now)"
            )
    return warnings
