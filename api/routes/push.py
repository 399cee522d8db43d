"""``POST /push``: Feast's push request, rows to the online store, the offline store or both.

The body is Feast's: ``{"push_source_name": ..., "df": {column: [values]}, "to": "online" |
"offline" | "online_and_offline"}``. Feast answers with an empty body; we answer 200 with what
the push did (rows, per view written / older than stored / expired), which Feast clients ignore.
Rows that do not fit the source are a 422 naming the column, and nothing is written.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api import deps
from api.responses import OrjsonResponse
from api.schemas import PUSH_REQUEST_SCHEMA, parse_push_request

__all__ = ["router"]

router = APIRouter()


@router.post(
    "/push",
    response_class=OrjsonResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PUSH_REQUEST_SCHEMA}},
        }
    },
    summary="Push rows to the online and/or offline store (Feast's feature-server shape)",
)
async def push(request: Request, principal: deps.Caller) -> Response:
    """Validate the rows against the push source's views, then write them."""
    parsed = parse_push_request(await request.body(), deps.settings(request).max_push_rows)
    store = deps.store(request)

    def run() -> dict[str, Any]:
        report = store.push(parsed.source, parsed.columns, parsed.to, principal=principal)
        return {
            "push_source_name": report.source,
            "to": report.mode.value,
            "rows": report.rows,
            "online": [
                {
                    "feature_view": view.view,
                    "version": view.version,
                    "keys": view.keys,
                    "written": view.result.written,
                    "skipped_older": view.result.skipped_older,
                    "expired": view.result.expired,
                }
                for view in report.online
            ],
            "offline_rows": report.rows if report.offline_file is not None else 0,
            "ignored_columns": report.ignored_columns,
        }

    return OrjsonResponse(await run_in_threadpool(run))
