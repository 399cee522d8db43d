"""``POST /get-online-features``: Feast's feature-server request and response, unchanged.

The response lists the join keys first, then the features in request order, one result per
column with ``values``, ``statuses`` and ``event_timestamps`` per entity row. The lookup runs on
the event loop (with Redis, an async client; see ``FeatureStore.get_online_features_async``).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from api import deps
from api.metrics import Metrics
from api.responses import OrjsonResponse
from api.schemas import ONLINE_REQUEST_SCHEMA, parse_online_request
from api.settings import ApiSettings
from featurestore.governance.access import Principal
from featurestore.store import FeatureStore

__all__ = ["lookup_body", "router"]

router = APIRouter()


@router.post(
    "/get-online-features",
    response_class=OrjsonResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ONLINE_REQUEST_SCHEMA}},
        }
    },
    summary="Latest feature values for entities (Feast's feature-server shape)",
)
async def get_online_features(request: Request, principal: deps.Caller) -> Response:
    """Look up ``features`` (or a ``feature_service``) for ``entities``."""
    body = await lookup_body(
        deps.store(request),
        deps.settings(request),
        deps.metrics(request),
        principal,
        await request.body(),
    )
    return OrjsonResponse(body)


async def lookup_body(
    store: FeatureStore,
    settings: ApiSettings,
    metrics: Metrics,
    principal: Principal | None,
    raw: bytes,
) -> dict[str, Any]:
    """The response body of a lookup request (raises what :mod:`api.errors` maps to statuses).

    Shared by the route and :class:`api.fastpath.OnlineLookupFastPath`, which serves it in front
    of FastAPI's routing."""
    parsed = parse_online_request(raw, settings.max_entities)
    start = time.perf_counter()
    response = await store.get_online_features_async(
        parsed.features,
        entities=parsed.entities,
        full_feature_names=parsed.full_feature_names,
        principal=principal,
    )
    metrics.lookup_latency.observe(time.perf_counter() - start)
    body = response.to_feast_json()
    # Join keys come first and are always PRESENT: count only the features' statuses.
    features = body["results"][len(response.join_keys) :]
    metrics.count_statuses(result["statuses"] for result in features)
    return body
