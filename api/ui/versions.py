"""The versions of a feature view or an on-demand view, a page at a time, and one version's
definition on its own (what a side-by-side diff compares), so that a page never reads every
version of a long history to show twenty of them.

Both read through the facade as the caller (``describe`` on the object decides, as for the
object's own page) and through :class:`Visibility` (no hidden feature is named).
"""

from __future__ import annotations

from typing import Any

from api.ui.visibility import Visibility
from featurestore.registry import HistoryEntry
from featurestore.store import FeatureStore

__all__ = ["PAGE", "on_demand_detail_lines", "version_definition", "versions_page"]

#: Versions per page on the View and On-demand pages.
PAGE = 20
FEATURE_VIEW = "feature_view"
ON_DEMAND = "on_demand_feature_view"


def versions_page(
    store: FeatureStore, seen: Visibility, kind: str, name: str, *, offset: int, limit: int
) -> dict[str, Any]:
    """``limit`` recorded changes of ``name`` from ``offset``, newest first, with ``total``:
    each with what changed (lines naming a hidden feature left out)."""
    entries, total = store.history_page(name, kind, offset=offset, limit=limit, principal=seen.who)
    return {
        "kind": kind,
        "name": name,
        "offset": offset,
        "limit": limit,
        "total": total,
        "versions": [_entry(entry, seen, kind, name) for entry in entries],
    }


def _entry(entry: HistoryEntry, seen: Visibility, kind: str, name: str) -> dict[str, Any]:
    details = list(entry.details)
    return {
        "version": entry.version,
        "change": entry.change,
        "content_hash": entry.content_hash,
        "applied_at": entry.applied_at.isoformat(),
        "details": (
            on_demand_detail_lines(details)
            if kind == ON_DEMAND
            else seen.detail_lines(details, name)
        ),
        # A deleted version has no definition of its own to open or compare.
        "definition": entry.change != "deleted",
    }


def on_demand_detail_lines(lines: list[str]) -> list[str]:
    """An on-demand version's change lines: those about its own features and mode as they are
    (its schema follows ``describe``), the others (sources, code, imports, constants: they can
    name an input feature the reader may not see) as their heading only. The side-by-side diff
    shows those changes to a reader who may see them."""
    shown = []
    for line in lines:
        if line.startswith(("feature ", "mode:")):
            shown.append(line)
        else:
            heading = line.partition(":")[0].strip()
            shown.append(f"{heading} changed" if not heading.endswith("changed") else heading)
    return shown


def version_definition(
    store: FeatureStore, seen: Visibility, name: str, version: int
) -> dict[str, Any]:
    """Feature view ``name`` at ``version`` as :meth:`Visibility.definition` shows it."""
    view = store.get_feature_view(name, version, principal=seen.who)
    return {"version": version, "definition": seen.definition(view.to_dict(), name)}
