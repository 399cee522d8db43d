"""``/ui``: the web UI's pages (static files of this package) and the read-only JSON they call
under ``/ui/api``. Every endpoint reads through the facade as the caller.

Who the caller is: the bearer token of the request (``Authorization: Bearer <token>``, an API key
or a token of the tokens file, as for REST; the pages send the token typed in their token field,
kept in the browser tab's sessionStorage). Under ``featurestore ui`` (``local=True``) a request
without a token acts as the store's own principal (the CLI's ``--token``), so one person can look
at their repository without typing anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as FastApiPath
from fastapi.staticfiles import StaticFiles
from starlette.responses import FileResponse, RedirectResponse

from api import deps
from api.auth import TokenFile, resolve_caller
from api.responses import OrjsonResponse
from api.ui.on_demand import on_demand_page, on_demand_version
from api.ui.pages import (
    audit_page,
    catalog_page,
    datasets_page,
    lineage_page,
    readers_page,
    view_page,
)
from api.ui.quality import drift_page, statistics_page, validations_page
from api.ui.versions import PAGE, version_definition, versions_page
from api.ui.visibility import Visibility
from featurestore.governance.access import Principal

__all__ = ["STATIC", "install_ui"]

#: The pages: HTML, CSS and plain JavaScript, no build step.
STATIC = Path(__file__).resolve().parent / "static"

# Left out of the OpenAPI document: these shapes serve the pages, not clients (docs/ui.md).
router = APIRouter(prefix="/ui", include_in_schema=False)
Offset = Annotated[int, Query(ge=0, description="First row of the page")]
Limit = Annotated[int, Query(ge=1, le=200, description="Rows per page")]
Version = Annotated[int, FastApiPath(ge=1, description="A stored version")]
FocusKind = Literal["feature_view", "on_demand_feature_view"]


def install_ui(app: FastAPI, *, local: bool = False) -> None:
    """Serve the UI under ``/ui`` of ``app``; ``local``: a request without a token acts as the
    store's own principal (``featurestore ui``) instead of being refused when tokens exist."""
    app.state.ui_local = local
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    if local:
        app.add_api_route("/", _redirect_root, include_in_schema=False)


async def _caller(request: Request) -> Principal | None:
    header = request.headers.get("authorization")
    if getattr(request.app.state, "ui_local", False) and not header:
        return None  # the store's own principal
    tokens = cast(TokenFile, request.app.state.tokens)
    return resolve_caller(tokens, deps.store(request), header)


Caller = Annotated[Principal | None, Depends(_caller)]


def _seen(request: Request, who: Principal | None) -> Visibility:
    return Visibility(deps.store(request), who)


@router.get("")
@router.get("/")
def index() -> FileResponse:
    """The single page; it routes between Catalog, View, Lineage, Datasets and Audit itself."""
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def _redirect_root() -> RedirectResponse:
    """``/`` of ``featurestore ui``: the UI."""
    return RedirectResponse("/ui/")


@router.get("/api/whoami", response_class=OrjsonResponse)
def whoami(request: Request, who: Caller) -> dict[str, Any]:
    """Who the pages act as, and the project."""
    store = deps.store(request)
    principal = store.guard.principal(who)
    return {
        "project": store.project,
        "principal": principal.name,
        "roles": sorted(principal.roles),
        "local": bool(getattr(request.app.state, "ui_local", False)),
    }


@router.get("/api/catalog", response_class=OrjsonResponse)
def catalog(
    request: Request,
    who: Caller,
    offset: Offset = 0,
    limit: Limit = 50,
    q: str = Query("", description="Substring of a name, description, tag or owner"),
    kind: str = Query(
        "",
        description="feature, feature_view, on_demand_feature_view, entity or feature_service",
    ),
    tag: str = Query("", description="key=value"),
    owner: str = Query("", description="An owner"),
) -> dict[str, Any]:
    """Search the catalog, with facets by tag and owner."""
    return catalog_page(
        deps.store(request),
        _seen(request, who),
        q=q,
        kind=kind,
        tag=tag,
        owner=owner,
        offset=offset,
        limit=limit,
    )


@router.get("/api/views/{name}", response_class=OrjsonResponse)
def view(name: str, request: Request, who: Caller) -> dict[str, Any]:
    """One view: definition, versions, freshness, retention, readers, users."""
    return view_page(deps.store(request), _seen(request, who), name)


@router.get("/api/views/{name}/versions", response_class=OrjsonResponse)
def view_versions(
    name: str, request: Request, who: Caller, offset: Offset = 0, limit: Limit = PAGE
) -> dict[str, Any]:
    """A page of the view's versions, newest first."""
    seen = _seen(request, who)
    return versions_page(
        deps.store(request), seen, "feature_view", name, offset=offset, limit=limit
    )


@router.get("/api/views/{name}/versions/{version}", response_class=OrjsonResponse)
def view_version(name: str, version: Version, request: Request, who: Caller) -> dict[str, Any]:
    """One version's definition (what a diff compares)."""
    return version_definition(deps.store(request), _seen(request, who), name, version)


@router.get("/api/views/{name}/readers", response_class=OrjsonResponse)
def readers(
    name: str, request: Request, who: Caller, offset: Offset = 0, limit: Limit = PAGE
) -> dict[str, Any]:
    """A page of the policies deciding who may read the view."""
    seen = _seen(request, who)
    return readers_page(deps.store(request), seen, name, offset=offset, limit=limit)


@router.get("/api/on-demand/{name}", response_class=OrjsonResponse)
def on_demand(name: str, request: Request, who: Caller) -> dict[str, Any]:
    """One on-demand view: schema, inputs, mode, code, versions, saved datasets."""
    return on_demand_page(deps.store(request), _seen(request, who), name)


@router.get("/api/on-demand/{name}/versions", response_class=OrjsonResponse)
def on_demand_versions(
    name: str, request: Request, who: Caller, offset: Offset = 0, limit: Limit = PAGE
) -> dict[str, Any]:
    """A page of the on-demand view's versions, newest first."""
    seen = _seen(request, who)
    store = deps.store(request)
    return versions_page(store, seen, "on_demand_feature_view", name, offset=offset, limit=limit)


@router.get("/api/on-demand/{name}/versions/{version}", response_class=OrjsonResponse)
def on_demand_at(name: str, version: Version, request: Request, who: Caller) -> dict[str, Any]:
    """One version of the on-demand view, its code included (for a diff)."""
    return on_demand_version(deps.store(request), _seen(request, who), name, version)


@router.get("/api/views/{name}/statistics", response_class=OrjsonResponse)
def statistics(
    name: str, request: Request, who: Caller, offset: Offset = 0, limit: Limit = 5
) -> dict[str, Any]:
    """Recorded statistics of the view, newest first, with bounded histograms."""
    seen = _seen(request, who)
    return statistics_page(deps.store(request), seen, name, offset=offset, limit=limit)


@router.get("/api/views/{name}/drift", response_class=OrjsonResponse)
def drift(
    name: str, request: Request, who: Caller, offset: Offset = 0, limit: Limit = 10
) -> dict[str, Any]:
    """Recorded drift reports of the view, newest first."""
    seen = _seen(request, who)
    return drift_page(deps.store(request), seen, name, offset=offset, limit=limit)


@router.get("/api/views/{name}/validations", response_class=OrjsonResponse)
def validations(
    name: str, request: Request, who: Caller, offset: Offset = 0, limit: Limit = 10
) -> dict[str, Any]:
    """Recorded validations of the view, newest first."""
    seen = _seen(request, who)
    return validations_page(deps.store(request), seen, name, offset=offset, limit=limit)


@router.get("/api/lineage", response_class=OrjsonResponse)
def lineage(
    request: Request,
    who: Caller,
    focus: str = Query("", description="Only the graph around this view (empty: every view)"),
    kind: Annotated[FocusKind, Query(description="What ``focus`` names")] = "feature_view",
) -> dict[str, Any]:
    """Sources -> views -> on-demand views -> services -> saved datasets."""
    return lineage_page(deps.store(request), _seen(request, who), focus or None, kind)


@router.get("/api/datasets", response_class=OrjsonResponse)
def datasets(
    request: Request, who: Caller, offset: Offset = 0, limit: Limit = 50
) -> dict[str, Any]:
    """Saved training sets with the view versions they used."""
    return datasets_page(deps.store(request), _seen(request, who), offset=offset, limit=limit)


@router.get("/api/audit", response_class=OrjsonResponse)
def audit(
    request: Request,
    who: Caller,
    limit: Limit = 50,
    principal: str = Query("", description="Only this principal"),
    action: str = Query("", description="Only this action"),
    resource: str = Query("", description="Only resources containing this"),
    before: int | None = Query(None, ge=1, description="Only records older than this id"),
) -> dict[str, Any]:
    """The audit log, newest first (needs admin)."""
    return audit_page(
        deps.store(request),
        _seen(request, who),
        principal=principal,
        action=action,
        resource=resource,
        before=before,
        limit=limit,
    )
