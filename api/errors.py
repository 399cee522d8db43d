"""The one place where errors become HTTP answers.

Every error answer is JSON, ``{"error": {"type": ..., "message": ...}}``, never a traceback:

* bad client input -> 4xx: malformed JSON 400, wrong shapes or types 422, unknown features or
  views 400 (404 for a named resource of a ``/v1`` path), missing or mistyped join keys 422, too
  many entity rows (or pushed rows) 413, pushed rows that do not fit their source 422, missing or
  bad token 401;
* the online store or registry unreachable -> 503, so callers retry (the service recovers on its
  own when the backend returns);
* anything else -> 500 with the error type only; the details go to the server log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.auth import Unauthorized
from api.responses import OrjsonResponse
from featurestore.errors import (
    ConfigError,
    EntityFrameError,
    FeatureReferenceError,
    FeatureStoreError,
    ObjectNotFoundError,
    OnlineStoreError,
    PushError,
    RegistryError,
)

__all__ = ["ApiError", "error_response", "install_error_handlers", "status_of"]

log = logging.getLogger("featurestore.api")

# Most specific first: the first matching class decides the status.
_STATUS: tuple[tuple[type[FeatureStoreError], int], ...] = (
    (ObjectNotFoundError, 404),
    (FeatureReferenceError, 400),
    (EntityFrameError, 422),
    (PushError, 422),
    (OnlineStoreError, 503),
    (RegistryError, 503),
    (ConfigError, 500),
)


class ApiError(Exception):
    """An error the service itself reports (bad request shape, limits), with its status."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message


def status_of(exc: FeatureStoreError) -> int:
    """The HTTP status of a featurestore error."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The JSON error body every failure uses."""
    return OrjsonResponse(
        {"error": {"type": type_, "message": message}}, status_code=status, headers=headers
    )


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every exception into a JSON error body."""

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.type, exc.message)

    async def on_unauthorized(request: Request, exc: Exception) -> Response:
        return error_response(401, "Unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"})

    async def on_featurestore_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FeatureStoreError)
        status = status_of(exc)
        if status >= 500:
            log.warning("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(status, type(exc).__name__, str(exc))

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, "ValidationError", _validation_message(exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers: dict[str, Any] | None = getattr(exc, "headers", None)
        return error_response(
            exc.status_code, _http_type(exc.status_code), str(exc.detail), headers=headers
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s: unexpected error", request.method, request.url.path)
        return error_response(
            500, "InternalError", f"unexpected {type(exc).__name__}; see the server log"
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(Unauthorized, on_unauthorized)
    app.add_exception_handler(FeatureStoreError, on_featurestore_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


def _http_type(status: int) -> str:
    return {404: "NotFound", 405: "MethodNotAllowed", 401: "Unauthorized"}.get(status, "HTTPError")
