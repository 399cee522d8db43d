"""``/v1``: browse and search the registry (feature views with versions, services, entities,
features). Read-only; every read goes through the facade."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from api import deps
from api.responses import OrjsonResponse
from featurestore.definitions.feature_view import FeatureView
from featurestore.registry import HistoryEntry

__all__ = ["router"]

router = APIRouter(prefix="/v1")


@router.get("/feature-views", response_class=OrjsonResponse)
def list_feature_views(request: Request, principal: deps.Caller) -> dict[str, Any]:
    """Every registered feature view the caller may describe, current version."""
    views = deps.store(request).list_feature_views(principal=principal)
    return {"feature_views": [view.to_dict() for view in views]}


@router.get("/feature-views/{name}", response_class=OrjsonResponse)
def get_feature_view(name: str, request: Request, principal: deps.Caller) -> dict[str, Any]:
    """One feature view and its recorded versions and changes, oldest first."""
    store = deps.store(request)
    view = store.get_feature_view(name, principal=principal)
    history = store.history(name, "feature_view", principal=principal)
    status = store.status([view.name], principal=principal) if view.online else []
    return {
        "feature_view": view.to_dict(),
        "versions": [_entry(e) for e in history],
        "freshness": status[0].to_dict() if status else None,
    }


@router.get("/feature-services", response_class=OrjsonResponse)
def list_feature_services(request: Request, principal: deps.Caller) -> dict[str, Any]:
    """Every registered feature service the caller may describe."""
    services = deps.store(request).list_feature_services(principal=principal)
    return {"feature_services": [service.to_dict() for service in services]}


@router.get("/entities", response_class=OrjsonResponse)
def list_entities(request: Request, principal: deps.Caller) -> dict[str, Any]:
    """Every registered entity the caller may describe."""
    entities = deps.store(request).list_entities(principal=principal)
    return {"entities": [entity.to_dict() for entity in entities]}


@router.get("/features", response_class=OrjsonResponse)
def search_features(
    request: Request,
    principal: deps.Caller,
    q: str = Query("", description="Substring of a name, description, owner or tag"),
    tag: list[str] = Query(  # noqa: B008 - FastAPI's declaration style
        default_factory=list, description="key=value (or key): every one must match"
    ),
) -> dict[str, Any]:
    """Features whose name, view, description, owner or tags match ``q`` and every ``tag``."""
    needle = q.strip().lower()
    wanted = [_parse_tag(t) for t in tag]
    found = []
    for view in deps.store(request).list_feature_views(principal=principal):
        for feature in _features(view):
            tags: dict[str, str] = feature["tags"]
            if all(
                key in tags and (value is None or tags[key] == value) for key, value in wanted
            ) and (not needle or needle in _haystack(feature)):
                found.append(feature)
    return {"features": found}


def _features(view: FeatureView) -> list[dict[str, Any]]:
    return [
        {
            "name": field.name,
            "reference": f"{view.name}:{field.name}",
            "feature_view": view.name,
            "dtype": field.dtype.name,
            "description": field.description or view.description,
            # Field tags refine the view's tags.
            "tags": {**view.tags, **field.tags},
            "owner": view.owner,
        }
        for field in view.features
    ]


def _haystack(feature: dict[str, Any]) -> str:
    tags = " ".join(f"{k}={v}" for k, v in feature["tags"].items())
    parts = (feature["reference"], feature["description"], feature["owner"], tags)
    return " ".join(parts).lower()


def _parse_tag(text: str) -> tuple[str, str | None]:
    key, sep, value = text.partition("=")
    return key.strip(), (value.strip() if sep else None)


def _entry(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "version": entry.version,
        "change": entry.change,
        "content_hash": entry.content_hash,
        "applied_at": entry.applied_at.isoformat(),
        "details": list(entry.details),
    }
