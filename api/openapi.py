"""What the OpenAPI document says beyond the routes' signatures: the error body every failure
uses, which error statuses each route answers, and the bodies of ``/health`` and ``/metrics``.

    install_error_responses(app)     # in create_app: on every route, those added later included

The document must list every status the service can answer, with the body it really sends
(``schemathesis --checks all`` holds it to that): :func:`install_error_responses` adds the
statuses any operation may answer to every route, those added later included, and replaces
FastAPI's own validation-error body, which the service never sends, with :class:`ErrorBody`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from api.metrics import CONTENT_TYPE

__all__ = [
    "ERROR_STATUSES",
    "HEALTH_RESPONSES",
    "METRICS_RESPONSES",
    "ErrorBody",
    "ErrorDetail",
    "install_error_responses",
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


class HealthCheck(BaseModel):
    """One dependency's state (``freshness``: views whose freshness objective is breached)."""

    ok: bool
    error: str | None = None
    breached: list[str] | None = None


class Health(BaseModel):
    """``/health``: ``ok`` with the project, ``degraded`` (still 200) when a view's freshness
    objective is breached, or ``unavailable`` with an error naming what failed."""

    status: Literal["ok", "degraded", "unavailable"]
    project: str | None = None
    error: ErrorDetail | None = None
    checks: dict[str, HealthCheck]


HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": Health,
        "description": "The registry and the online store answer (`degraded`: a view's "
        "freshness objective is breached)",
    },
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


#: Statuses any operation may answer: tokens, policies, the body limit, bad parameters, a
#: backend down. Operations with a body or a path parameter may also answer 400 and 404.
_ANY_OPERATION = (401, 403, 413, 422, 503)
_WITH_INPUT = (400, 404)
#: Open to load balancers and scrapers, without parameters: only what they declare.
_PLAIN_PATHS = frozenset({"/health", "/metrics"})
_REF = "#/components/schemas/{model}"


def install_error_responses(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document list, on every operation, the error statuses it may
    answer with the :class:`ErrorBody` it answers them with."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_error_responses(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _with_error_responses(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    body = ErrorBody.model_json_schema(ref_template=_REF)
    schemas.update(body.pop("$defs", {}))
    schemas["ErrorBody"] = body
    for path, operations in document.get("paths", {}).items():
        if path in _PLAIN_PATHS:
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            statuses = list(_ANY_OPERATION)
            if "requestBody" in operation or "{" in path:
                statuses.extend(_WITH_INPUT)
            for status in sorted(statuses):
                existing = responses.get(str(status))
                if existing is None or _is_fastapi_validation(existing):
                    responses[str(status)] = {
                        "description": ERROR_STATUSES[status],
                        "content": {
                            "application/json": {"schema": {"$ref": _REF.format(model="ErrorBody")}}
                        },
                    }
    if "HTTPValidationError" not in str(document.get("paths")):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    return "HTTPValidationError" in str(response.get("content", {}))
