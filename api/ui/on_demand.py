"""The JSON of the On-demand page: one on-demand feature view, its schema, inputs, mode and code,
a page of its versions, and the saved datasets holding its features.

What a reader sees (docs/ui.md): the schema, mode and code follow ``describe`` on the on-demand
view; an input feature the reader may not see (:class:`Visibility`) is named nowhere, so the code
of a version reading one is withheld from them, and that input counted, not named; whether its
values may be read (``values_readable``) is the facade's retrieval rule
(:meth:`~featurestore.FeatureStore.on_demand_readable`): a reader who may not read an input
feature sees none of the on-demand feature's values or statistics.
"""

from __future__ import annotations

from typing import Any

from api.ui.versions import ON_DEMAND, PAGE, versions_page
from api.ui.visibility import Visibility
from featurestore.definitions.field import Field
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.store import FeatureStore

__all__ = ["MAX_DATASETS", "on_demand_page", "on_demand_version"]

#: The most saved datasets the page lists (the newest).
MAX_DATASETS = 20


def on_demand_page(store: FeatureStore, seen: Visibility, name: str) -> dict[str, Any]:
    """The current version in full, the newest page of versions, whether the reader may see
    the values, and the saved datasets that hold its features."""
    view = store.get_on_demand_feature_view(name, principal=seen.who)
    current = store.registry.current_version(store.project, ON_DEMAND, name)
    readable = store.on_demand_readable(view, principal=seen.who)
    holding = [
        d
        for d in store.list_saved_datasets(principal=seen.who)
        if any(f in d.columns for f in view.feature_names)
    ]
    holding.sort(key=lambda d: d.created_at, reverse=True)
    return {
        "current_version": current,
        "definition": _shown(view, current, seen),
        "values_readable": readable,
        "versions": versions_page(store, seen, ON_DEMAND, name, offset=0, limit=PAGE),
        "datasets": [
            {
                "name": d.name,
                "rows": d.rows,
                "created_at": d.created_at.isoformat(),
                "columns": [f for f in view.feature_names if f in d.columns],
            }
            for d in holding[:MAX_DATASETS]
        ],
        "datasets_total": len(holding),
    }


def on_demand_version(
    store: FeatureStore, seen: Visibility, name: str, version: int
) -> dict[str, Any]:
    """One stored version, shown as :func:`on_demand_page` shows the current one."""
    view = store.get_on_demand_feature_view(name, version, principal=seen.who)
    return {"version": version, "definition": _shown(view, version, seen)}


def _shown(view: OnDemandFeatureView, version: int, seen: Visibility) -> dict[str, Any]:
    inputs: list[dict[str, Any]] = []
    withheld = False
    views = seen.described("feature_view")
    for source, fields in view.view_sources.items():
        if source not in views:
            withheld = True
            inputs.append({"kind": "feature_view", "name": None, "features": [], "hidden": 1})
            continue
        hidden = seen.hidden(source)
        shown = [_field(f) for f in fields if f.name not in hidden]
        withheld = withheld or len(shown) < len(fields)
        inputs.append(
            {
                "kind": "feature_view",
                "name": source,
                "features": shown,
                "hidden": len(fields) - len(shown),
            }
        )
    for request in view.request_sources:
        inputs.append(
            {
                "kind": "request_source",
                "name": request.name,
                "description": request.description,
                "features": [_field(f) for f in request.schema],
                "hidden": 0,
            }
        )
    code = view.code.spec()
    return {
        "name": view.name,
        "version": version,
        "mode": view.mode,
        "description": view.description,
        "owner": view.owner,
        "tags": dict(view.tags),
        "features": [_field(f) for f in view.schema],
        "inputs": inputs,
        # The code names its inputs: withheld whole when one of them is hidden from the reader.
        "code": None if withheld else code,
        "code_withheld": withheld,
    }


def _field(field: Field) -> dict[str, Any]:
    return {
        "name": field.name,
        "dtype": field.dtype.name,
        "description": field.description,
        "tags": dict(field.tags),
    }
