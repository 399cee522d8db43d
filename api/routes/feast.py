"""The rest of Feast's feature-server paths, so that Feast's own client writes through us too:

* ``POST /write-to-online-store``: one view's rows, straight online (Feast's client sends its
  ``push`` and ``write_to_online_store`` here, with ``event_timestamp`` and ``created`` columns);
* ``POST /materialize`` and ``POST /materialize-incremental``: a materialization run, answered
  when it is done (Feast's ``?async=true`` is refused: a run is never left half-reported).

Bodies are Feast's (:mod:`api.schemas`); every call goes through the facade, which checks
``write_online`` / ``materialize`` for the bearer token's principal and writes the audit log.
Feast answers with an empty body; we answer 200 with what was done, which Feast ignores.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api import deps
from api.errors import ApiError
from api.responses import OrjsonResponse
from api.schemas import (
    MATERIALIZE_INCREMENTAL_REQUEST_SCHEMA,
    MATERIALIZE_REQUEST_SCHEMA,
    WRITE_REQUEST_SCHEMA,
    parse_materialize_request,
    parse_write_request,
)
from featurestore.governance.access import Principal
from featurestore.materialize import MaterializationReport
from featurestore.store import FeatureStore

__all__ = ["router"]

router = APIRouter()


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@router.post(
    "/write-to-online-store",
    response_class=OrjsonResponse,
    openapi_extra=_body(WRITE_REQUEST_SCHEMA),
    summary="Write one feature view's rows to the online store (Feast's feature-server shape)",
)
async def write_to_online_store(request: Request, principal: deps.Caller) -> Response:
    """Check the rows against the view's schema, then write them online."""
    parsed = parse_write_request(await request.body(), deps.settings(request).max_push_rows)
    store = deps.store(request)
    report = await run_in_threadpool(
        store.write_to_online_store, parsed.view, parsed.columns, principal=principal
    )
    return OrjsonResponse(report.to_dict())


@router.post(
    "/materialize",
    response_class=OrjsonResponse,
    openapi_extra=_body(MATERIALIZE_REQUEST_SCHEMA),
    summary="Materialize a window into the online store (Feast's feature-server shape)",
)
async def materialize(
    request: Request,
    principal: deps.Caller,
    async_: bool = Query(False, alias="async", description="Not supported: must be false"),
) -> Response:
    """Write each view's latest row per entity in ``[start_ts, end_ts]`` online."""
    return await _materialize(request, principal, async_, incremental=False)


@router.post(
    "/materialize-incremental",
    response_class=OrjsonResponse,
    openapi_extra=_body(MATERIALIZE_INCREMENTAL_REQUEST_SCHEMA),
    summary="Materialize what arrived since each view's watermark (Feast's feature-server shape)",
)
async def materialize_incremental(
    request: Request,
    principal: deps.Caller,
    async_: bool = Query(False, alias="async", description="Not supported: must be false"),
) -> Response:
    """Materialize each view from its watermark up to ``end_ts``."""
    return await _materialize(request, principal, async_, incremental=True)


async def _materialize(
    request: Request, principal: Principal | None, async_: bool, *, incremental: bool
) -> Response:
    if async_:
        raise ApiError(
            422,
            "ValidationError",
            "async=true is not supported: the request returns when the run is done; "
            "call without async (Feast's run_async=False)",
        )
    parsed = parse_materialize_request(await request.body(), incremental=incremental)
    store = deps.store(request)

    def run(store: FeatureStore) -> MaterializationReport:
        if parsed.start is None:
            return store.materialize_incremental(
                parsed.end, parsed.feature_views, progress=False, principal=principal
            )
        return store.materialize(
            parsed.start, parsed.end, parsed.feature_views, progress=False, principal=principal
        )

    report = await run_in_threadpool(run, store)
    return OrjsonResponse(
        {
            "status": "done",
            "feature_views": [
                {
                    "feature_view": view.view,
                    "version": view.version,
                    "rows_read": view.rows_read,
                    "keys": view.keys,
                    "written": view.written,
                    "skipped_older": view.skipped_older,
                    "expired": view.expired,
                    "watermark_end": (
                        None if view.watermark_end is None else view.watermark_end.isoformat()
                    ),
                }
                for view in report.views
            ],
        }
    )
