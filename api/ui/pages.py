"""The JSON behind the UI's pages: Catalog, View, Lineage, Datasets and Audit.

Each builder reads through the facade as the caller (``seen.who``), so access policies decide
what comes back, and hands every definition and record through :class:`Visibility`, so a feature
the caller may not read is absent (name included). Lists are paged (``offset``, ``limit``).
"""

from __future__ import annotations

from typing import Any

from api.ui.versions import PAGE, versions_page
from api.ui.visibility import Visibility
from featurestore.definitions.base import Definition
from featurestore.definitions.feature_view import FeatureView
from featurestore.definitions.field import Field
from featurestore.definitions.on_demand import OnDemandFeatureView
from featurestore.governance.lineage import LineageResult
from featurestore.store import FeatureStore

__all__ = [
    "audit_page",
    "catalog_page",
    "datasets_page",
    "lineage_page",
    "readers_page",
    "view_page",
]

#: Kinds of node on the Lineage page: what things are built from and into (runs left out).
GRAPH_KINDS = (
    "source",
    "request_source",
    "entity",
    "feature_view",
    "on_demand_feature_view",
    "feature_service",
    "saved_dataset",
)
#: Kinds of node shown only to a reader who may describe them.
DESCRIBED = ("feature_view", "on_demand_feature_view", "feature_service", "entity")
#: The kinds a Lineage page can be focused on.
FOCUSABLE = ("feature_view", "on_demand_feature_view")
#: The most rows of a list the View page draws at once (freshness per version, saved datasets).
MAX_ROWS = 20
#: The most nodes the Lineage page draws.
MAX_NODES = 400


# -- catalog -------------------------------------------------------------------------------------


def catalog_page(
    store: FeatureStore,
    seen: Visibility,
    *,
    q: str,
    kind: str,
    tag: str,
    owner: str,
    offset: int,
    limit: int,
) -> dict[str, Any]:
    """Features, views, entities and services matching ``q`` (in the name, description, tags
    or owner), of ``kind`` (empty: all); facets by tag and owner over those; then ``tag``
    (``key=value``) and ``owner`` narrow the page."""
    needle = q.strip().lower()
    found = [
        item
        for item in _items(store, seen)
        if (not kind or item["kind"] == kind) and (not needle or needle in _haystack(item))
    ]
    facets: dict[str, dict[str, int]] = {"tags": {}, "owners": {}}
    for item in found:
        for pair in _tag_pairs(item["tags"]):
            facets["tags"][pair] = facets["tags"].get(pair, 0) + 1
        if item["owner"]:
            facets["owners"][item["owner"]] = facets["owners"].get(item["owner"], 0) + 1
    narrowed = [
        item
        for item in found
        if (not tag or tag in _tag_pairs(item["tags"])) and (not owner or item["owner"] == owner)
    ]
    return {
        "total": len(narrowed),
        "offset": offset,
        "items": narrowed[offset : offset + limit],
        "facets": {name: dict(sorted(counts.items())) for name, counts in facets.items()},
    }


def _items(store: FeatureStore, seen: Visibility) -> list[dict[str, Any]]:
    """Views, then the features the reader may read, then on-demand views and their features
    (when the reader may read their values), entities and services."""
    who = seen.who
    items: list[dict[str, Any]] = []
    views = store.list_feature_views(principal=who)
    for view in views:
        items.append(_item("feature_view", view.name, view, view))
    for view in views:
        items += [
            _feature_item(view, field)
            for field in view.features
            if seen.visible(view.name, field.name)
        ]
    on_demand = store.list_on_demand_feature_views(principal=who)
    for odfv in on_demand:
        items.append(_item("on_demand_feature_view", odfv.name, odfv, odfv))
    for odfv in on_demand:
        if store.on_demand_readable(odfv, principal=who):
            items += [_feature_item(odfv, field) for field in odfv.features]
    for entity in store.list_entities(principal=who):
        items.append(_item("entity", entity.name, None, entity))
    for service in store.list_feature_services(principal=who):
        items.append(_item("feature_service", service.name, None, service))
    return items


def _item(kind: str, name: str, view: Definition | None, obj: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        # The page a row opens: a view's (feature_view) or an on-demand view's.
        "view": None if view is None else view.name,
        "view_kind": None if view is None else view.kind,
        "description": obj.description,
        "owner": obj.owner,
        "tags": dict(obj.tags),
    }


def _feature_item(view: FeatureView | OnDemandFeatureView, field: Field) -> dict[str, Any]:
    item = _item("feature", f"{view.name}:{field.name}", view, view)
    item.update(
        description=field.description or view.description,
        tags={**view.tags, **field.tags},
        dtype=field.dtype.name,
    )
    return item


def _tag_pairs(tags: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in sorted(tags.items())]


def _haystack(item: dict[str, Any]) -> str:
    parts = [item["name"], item["description"], item["owner"], *_tag_pairs(item["tags"])]
    return " ".join(parts).lower()


# -- one view ------------------------------------------------------------------------------------


def view_page(store: FeatureStore, seen: Visibility, name: str) -> dict[str, Any]:
    """What the View page draws first: the current definition, the newest page of versions
    (their definitions are read one at a time, for a diff), freshness, retention, the first page
    of who may read it, and the services and saved datasets that use it. The quality records
    and the other pages of versions and readers are asked for on their own."""
    who = seen.who
    view = store.get_feature_view(name, principal=who)
    retention = store.retention.of(view)
    freshness = store.freshness(name, principal=who)
    using = [d for d in _datasets(store, who) if name in d.views]
    return {
        "view": seen.definition(view.to_dict(), name),
        "current_version": store.registry.current_version(store.project, "feature_view", name),
        "versions": versions_page(store, seen, "feature_view", name, offset=0, limit=PAGE),
        "freshness": freshness[:MAX_ROWS],
        "freshness_total": len(freshness),
        "retention_seconds": None if retention is None else retention.total_seconds(),
        "readers": store.readers(name, offset=0, limit=PAGE, principal=who),
        "services": [
            seen.service(s.to_dict())
            for s in store.list_feature_services(principal=who)
            if any(p.get("view") == name for p in s.to_dict()["spec"].get("projections", []))
        ],
        "datasets": [
            {"name": d.name, "version": d.views[name], "rows": d.rows} for d in using[:MAX_ROWS]
        ],
        "datasets_total": len(using),
    }


def readers_page(
    store: FeatureStore, seen: Visibility, name: str, *, offset: int, limit: int
) -> dict[str, Any]:
    """A page of the policies deciding who may read view ``name``."""
    return {"offset": offset, "limit": limit} | store.readers(
        name, offset=offset, limit=limit, principal=seen.who
    )


def _datasets(store: FeatureStore, who: Any) -> list[Any]:
    return store.list_saved_datasets(principal=who)


# -- lineage -------------------------------------------------------------------------------------


def lineage_page(
    store: FeatureStore, seen: Visibility, focus: str | None, kind: str = "feature_view"
) -> dict[str, Any]:
    """The graph sources -> views -> on-demand views -> services -> saved datasets of every view
    the caller may describe (or around ``focus``, a ``kind`` object), runs left out, at most
    :data:`MAX_NODES` nodes."""
    who = seen.who
    if focus:
        # 404 or 403 as the object's own page.
        store.get_definition(kind, focus, principal=who)
        names = [(kind, focus)]
    else:
        names = [(k, n) for k in FOCUSABLE for n in sorted(seen.described(k))]
    nodes: dict[str, dict[str, Any]] = {}
    edges: dict[tuple[str, str, str], dict[str, Any]] = {}
    for node_kind, name in names:
        traced = store.trace_lineage(name, "both", kind=node_kind, runs=1, principal=who)
        _merge(traced, nodes, edges, seen)
        if len(nodes) >= MAX_NODES:
            break
    kept = dict(list(nodes.items())[:MAX_NODES])
    return {
        "focus": focus,
        "kind": kind,
        "truncated": len(nodes) > MAX_NODES,
        "nodes": list(kept.values()),
        "edges": [e for e in edges.values() if e["source"] in kept and e["target"] in kept],
    }


def _merge(
    traced: LineageResult,
    nodes: dict[str, dict[str, Any]],
    edges: dict[tuple[str, str, str], dict[str, Any]],
    seen: Visibility,
) -> None:
    data = traced.to_dict()
    shown = {
        node["id"]
        for node in data["nodes"]
        if node["kind"] in GRAPH_KINDS
        # Views, services and entities the reader may not describe stay off the graph.
        and (node["kind"] not in DESCRIBED or node["name"] in seen.described(node["kind"]))
    }
    for node in data["nodes"]:
        if node["id"] in shown:
            nodes.setdefault(node["id"], node)
    for edge in data["edges"]:
        if edge["source"] not in shown or edge["target"] not in shown:
            continue
        detail = dict(edge.get("detail") or {})
        view = _view_name(edge["source"])
        if view is not None:
            # Features, and the columns they became, named on the edge (part_of, used_by).
            hidden = seen.hidden(view)
            for key, value in detail.items():
                if isinstance(value, list):
                    detail[key] = [v for v in value if v not in hidden]
        detail.pop("field_mapping", None)
        key = (edge["source"], edge["target"], edge["relation"])
        edges.setdefault(key, {**edge, "detail": detail})


def _view_name(node_id: str) -> str | None:
    kind, _, rest = node_id.partition(":")
    return rest.partition("@")[0] if kind == "feature_view" else None


# -- datasets ------------------------------------------------------------------------------------


def datasets_page(
    store: FeatureStore, seen: Visibility, *, offset: int, limit: int
) -> dict[str, Any]:
    """Saved training sets with the exact view versions they used; hidden columns left out."""
    found = _datasets(store, seen.who)
    page = found[offset : offset + limit]
    return {
        "total": len(found),
        "offset": offset,
        "datasets": [
            {
                "name": d.name,
                "views": {v: n for v, n in d.views.items() if v in seen.described("feature_view")},
                "hidden_views": sum(v not in seen.described("feature_view") for v in d.views),
                "rows": d.rows,
                "created_at": d.created_at.isoformat(),
                "principal": d.principal,
                "service": d.service,
                "entity_columns": list(d.entity_columns),
                "columns": [
                    c for c in d.columns if c in d.entity_columns or seen.column_visible(d.views, c)
                ],
            }
            for d in page
        ],
    }


# -- audit ---------------------------------------------------------------------------------------


def audit_page(
    store: FeatureStore,
    seen: Visibility,
    *,
    principal: str,
    action: str,
    resource: str,
    before: int | None,
    limit: int,
) -> dict[str, Any]:
    """A page of the audit log, newest first; ``before`` (an id) pages back. Needs admin."""
    records = store.audit_log(
        principal=principal or None,
        action=action or None,
        resource=resource or None,
        before_id=before,
        limit=limit + 1,
        as_principal=seen.who,
    )
    newest = list(reversed(records))
    page = newest[:limit]
    return {
        "records": [
            {
                "id": r.id,
                "at": r.at.isoformat(),
                "principal": r.principal,
                "action": r.action,
                "resource": r.resource,
                "outcome": r.outcome,
                "count": r.count,
                "detail": r.detail,
            }
            for r in page
        ],
        "next_before": page[-1].id if len(newest) > limit else None,
    }
