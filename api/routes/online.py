"""``POST /get-online-features``: Feast's feature-server request and response, unchanged.

The response lists the join keys first, then the features in request order, one result per
column with ``values``, ``statuses`` and ``event_timestamps`` per entity row. The lookup runs on
the event loop (with Redis, an async client; see ``FeatureStore.get_online_features_async``).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from api import deps
from api.responses import OrjsonResponse
from api.schemas import ONLINE_REQUEST_SCHEMA, parse_online_request

__all__ = ["router"]

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
async def get_online_features(
    request: Request, principal: str | None = Depends(deps.principal)
) -> Response:
    """Look up ``features`` (or a ``feature_service``) for ``entities``."""
    parsed = parse_online_request(await request.body(), deps.settings(request).max_entities)
    store = deps.store(request)
    metrics = deps.metrics(request)
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
    return OrjsonResponse(body)
