"""``GET /v1/lineage/{name}``: the lineage graph around the nodes called ``name``, as JSON.

``name`` is anything ``featurestore lineage`` takes, a source path with slashes included
(``/v1/lineage/data/driver_stats.parquet``); ``direction`` is ``upstream``, ``downstream`` or
``both`` (default), ``kind`` picks one kind of node when the name names several, and ``runs``
(default 5, 0: all) caps the materialization runs shown per view version.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from api import deps
from api.errors import ApiError
from api.responses import OrjsonResponse
from featurestore.governance.lineage import NODE_KINDS

__all__ = ["router"]

router = APIRouter(prefix="/v1")


@router.get("/lineage/{name:path}", response_class=OrjsonResponse)
def lineage(
    name: str,
    request: Request,
    principal: deps.Caller,
    direction: Literal["upstream", "downstream", "both"] = Query(
        "both", description="upstream: what it is built from; downstream: what is built from it"
    ),
    kind: str | None = Query(
        None,
        description="Only nodes of this kind (e.g. feature_view)",
        json_schema_extra={"enum": list(NODE_KINDS)},
    ),
    runs: int = Query(
        5,
        ge=0,
        description="Latest runs (materializations, validations, drift checks) per view version (0: all)",
    ),
) -> dict[str, Any]:
    """Roots (the nodes called ``name``), the nodes reached and the edges between them."""
    if kind is not None and kind not in NODE_KINDS:
        raise ApiError(
            422, "ValidationError", f"kind: unknown node kind {kind!r}; known: {list(NODE_KINDS)}"
        )
    result = deps.store(request).trace_lineage(
        name, direction, kind=kind, runs=runs or None, principal=principal
    )
    return result.to_dict()
