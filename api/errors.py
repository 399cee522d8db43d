"""The one place where errors become HTTP answers.

Every error answer is JSON, ``{"error": {"type": ..., "message": ...}}``, never a traceback:

* bad client input -> 4xx: malformed JSON 400, wrong shapes or types 422, unknown features or
  views 400 (404 for a named resource of a ``/v1`` path), missing or mistyped join keys 422, too
  many entity rows (or pushed rows) or a body over ``api.max_body_bytes`` 413, a policy denying the caller 403, pushed rows that do not
  fit their source or that a strict validation rejects 422, a drift check that cannot be
  computed (no rows in a window) 422, missing or bad token 401;
* the online store or registry unreachable -> 503, so callers retry (the service recovers on its
  own when the backend returns);
* anything else -> 500 with the error type only; the details go to the server log.

Feast's own client, on the Feast-compatible paths, gets the same status with Feast's error body
instead, so that it raises its own exception types (see :mod:`api.feast_errors`).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.auth import Unauthorized
from api.feast_errors import feast_error_content, speaks_feast
from api.responses import OrjsonResponse
from featurestore.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConfigError,
    EngineCapabilityError,
    EntityFrameError,
    FeatureReferenceError,
    FeatureStoreError,
    ObjectNotFoundError,
    OnlineStoreError,
    PushError,
    QualityError,
    RegistryError,
    TransformationError,
)

__all__ = [
    "ApiError",
    "describe_error",
    "error_body",
    "error_content",
    "error_response",
    "install_error_handlers",
    "status_of",
]

log = logging.getLogger("featurestore.api")

# Most specific first: the first matching class decides the status.
_STATUS: tuple[tuple[type[FeatureStoreError], int], ...] = (
    (AuthenticationError, 401),
    (AccessDeniedError, 403),
    (ObjectNotFoundError, 404),
    (FeatureReferenceError, 400),
    (EntityFrameError, 422),
    (PushError, 422),
    (QualityError, 422),
    (EngineCapabilityError, 501),
    (TransformationError, 500),
    (OnlineStoreError, 503),
    (RegistryError, 503),
    (ConfigError, 500),
)


class ApiError(Exception):
    """An error the service itself reports (bad request shape, limits), with its status."""

    def __init__(
        self, status: int, type_: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers


def status_of(exc: FeatureStoreError) -> int:
    """The HTTP status of a featurestore error."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(type_: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON error body every failure uses."""
    return {"error": {"type": type_, "message": message}}


def error_response(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The JSON error response every failure uses."""
    return OrjsonResponse(error_body(type_, message), status_code=status, headers=headers)


def error_content(
    exc: BaseException, type_: str, message: str, *, path: str, user_agent: str | None
) -> bytes:
    """The body of an error answer to a request for ``path``: Feast's shape for Feast's client
    on a Feast-compatible path (:mod:`api.feast_errors`), our JSON error body otherwise."""
    if speaks_feast(path, user_agent):
        return feast_error_content(exc, message)
    return orjson.dumps(error_body(type_, message))


def describe_error(
    exc: Exception, method: str, path: str
) -> tuple[int, str, str, dict[str, str] | None]:
    """``(status, type, message, headers)`` of an error raised while answering ``method path``;
    server-side failures are logged (an unexpected one with its traceback)."""
    if isinstance(exc, ApiError):
        return exc.status, exc.type, exc.message, exc.headers
    if isinstance(exc, Unauthorized):
        return 401, "Unauthorized", str(exc), {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, FeatureStoreError):
        status = status_of(exc)
        if status >= 500:
            log.warning("%s %s failed: %s", method, path, exc)
        return status, type(exc).__name__, str(exc), None
    log.error("%s %s: unexpected error", method, path, exc_info=exc)
    return 500, "InternalError", f"unexpected {type(exc).__name__}; see the server log", None


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every exception into a JSON error body."""

    def answer(
        request: Request,
        exc: Exception,
        status: int,
        type_: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> Response:
        content = error_content(
            exc,
            type_,
            message,
            path=request.url.path,
            user_agent=request.headers.get("user-agent"),
        )
        return Response(content, status, headers=headers, media_type="application/json")

    async def on_error(request: Request, exc: Exception) -> Response:
        status, type_, message, headers = describe_error(exc, request.method, request.url.path)
        return answer(request, exc, status, type_, message, headers)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return answer(request, exc, 422, "ValidationError", _validation_message(exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers: dict[str, Any] | None = getattr(exc, "headers", None)
        type_ = _http_type(exc.status_code)
        return answer(request, exc, exc.status_code, type_, str(exc.detail), headers)

    for error in (ApiError, Unauthorized, FeatureStoreError, Exception):
        app.add_exception_handler(error, on_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


def _http_type(status: int) -> str:
    return {404: "NotFound", 405: "MethodNotAllowed", 401: "Unauthorized"}.get(status, "HTTPError")
