"""What the OpenAPI document says beyond the routes' signatures: the error body every failure
uses, which error statuses each route answers, and the bodies of ``/health`` and ``/metrics``.

    @router.get("/v1/entities", responses=error_responses(401, 403, 503))

Statuses are documented per route from :data:`ERROR_STATUSES` so that the document lists every
status the service can answer (``schemathesis --checks all`` holds it to that).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from api.metrics import CONTENT_TYPE

__all__ = [
    "ERROR_STATUSES",
    "HEALTH_RESPONSES",
    "METRICS_RESPONSES",
    "ErrorBody",
    "ErrorDetail",
    "error_responses",
]


class ErrorDetail(BaseModel):
    """What went wrong: the error's type (``ValidationError``, ``FeatureReferenceError``, ...)
    and a message naming the object and the problem."""

    model_config = ConfigDict(extra="forbid")

    type: str
    message: str


class ErrorBody(BaseModel):
    """The JSON body of every error answer (never a traceback)."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


#: Each error status the service answers, and when.
ERROR_STATUSES: dict[int, str] = {
    400: "Malformed JSON, or an unknown or malformed feature reference",
    401: "Tokens are configured and the request has no valid bearer token",
    403: "A policy denies the caller this request",
    404: "The named resource (view, service, push source, dataset, lineage node) does not exist",
    413: "Too many rows (api.max_entities, api.max_push_rows) or a body over api.max_body_bytes",
    422: "The request has the wrong shape or types, or names join keys or rows that do not fit",
    503: "The registry or the online store is unreachable (or the registry file is missing)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route answering ``statuses`` with :class:`ErrorBody`."""
    return {
        status: {"model": ErrorBody, "description": ERROR_STATUSES[status]} for status in statuses
    }


class HealthCheck(BaseModel):
    """One dependency's state."""

    ok: bool
    error: str | None = None


class Health(BaseModel):
    """``/health``: ``ok`` with the project, or ``unavailable`` with an error naming what failed."""

    status: Literal["ok", "unavailable"]
    project: str | None = None
    error: ErrorDetail | None = None
    checks: dict[str, HealthCheck]


HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Health, "description": "The registry and the online store answer"},
    503: {
        "model": Health,
        "description": "The registry or the online store fails; `error` says why",
    },
}

METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition format 0.0.4",
        "content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
    }
}
