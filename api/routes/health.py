"""``GET /health`` (registry and online store reachable? views fresh enough?) and ``GET /metrics``
(Prometheus, with each view's online age and stream lag read at scrape time).

Neither needs a token: load balancers and scrapers call them.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api import deps
from api.metrics import CONTENT_TYPE
from api.openapi import HEALTH_RESPONSES, METRICS_RESPONSES
from api.responses import OrjsonResponse
from featurestore.errors import FeatureStoreError

__all__ = ["router"]

router = APIRouter()


@router.get("/health", response_class=OrjsonResponse, responses=HEALTH_RESPONSES)
async def health(request: Request) -> Response:
    """200 when the registry and the online store answer; 503 naming what failed otherwise."""
    store = deps.store(request)
    metrics = deps.metrics(request)

    def check() -> dict[str, dict[str, Any]]:
        checks: dict[str, dict[str, Any]] = {}
        try:
            store.list_entities()
            checks["registry"] = {"ok": True}
        except Exception as exc:  # a health check reports every failure, typed or not
            checks["registry"] = {"ok": False, "error": _describe(exc)}
        start = time.perf_counter()
        try:
            store.online.ping()
            metrics.ping_latency.observe(time.perf_counter() - start)
            checks["online_store"] = {"ok": True}
        except Exception as exc:  # as above
            checks["online_store"] = {"ok": False, "error": _describe(exc)}
        if checks["registry"]["ok"]:
            try:
                breached = [row.view for row in store.status() if row.breached]
                checks["freshness"] = {"ok": not breached, "breached": breached}
            except Exception as exc:  # as above
                checks["freshness"] = {"ok": False, "error": _describe(exc)}
        return checks

    checks = await run_in_threadpool(check)
    failed = [name for name, result in checks.items() if not result["ok"] and name != "freshness"]
    if not failed:
        fresh = checks.get("freshness", {"ok": True})["ok"]
        return OrjsonResponse(
            {"status": "ok" if fresh else "degraded", "project": store.project, "checks": checks}
        )
    message = "; ".join(f"{name}: {checks[name]['error']}" for name in failed)
    return OrjsonResponse(
        {
            "status": "unavailable",
            "error": {"type": "ServiceUnavailable", "message": message},
            "checks": checks,
        },
        status_code=503,
    )


@router.get("/metrics", response_class=Response, responses=METRICS_RESPONSES)
def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition (format 0.0.4) of the service's metrics."""
    metrics = deps.metrics(request)
    # The registry down: /health says so, and the other metrics still count.
    with contextlib.suppress(FeatureStoreError):
        metrics.freshness(deps.store(request).status())
    return Response(metrics.render(), media_type=CONTENT_TYPE)


def _describe(exc: Exception) -> str:
    if isinstance(exc, FeatureStoreError):
        return f"{type(exc).__name__}: {exc}"
    return f"unexpected {type(exc).__name__}"
