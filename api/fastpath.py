"""``POST /get-online-features`` answered in front of FastAPI.

The lookup is the service's hot path, and FastAPI's routing, dependency solving and middleware
cost more than the lookup itself (measured with bench/serving.py: 0.30 ms of CPU per request
through FastAPI, 0.14 ms here). This ASGI middleware answers that one path itself, with the same
pieces as the route in :mod:`api.routes.online`: the token check of :mod:`api.auth`, the shared
:func:`~api.routes.online.lookup_body`, the error mapping of :mod:`api.errors` and the request
metrics. Every other request (and any other method on that path) goes on to FastAPI, where the
route also stays for the OpenAPI description.
"""

from __future__ import annotations

import time

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import TokenFile, resolve_caller
from api.errors import describe_error, error_content
from api.metrics import Metrics
from api.routes.online import lookup_body
from api.settings import ApiSettings
from featurestore.store import FeatureStore

__all__ = ["PATH", "OnlineLookupFastPath"]

PATH = "/get-online-features"
_JSON = (b"content-type", b"application/json")


class OnlineLookupFastPath:
    """ASGI middleware serving ``POST /get-online-features``; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: FeatureStore,
        settings: ApiSettings,
        metrics: Metrics,
        tokens: TokenFile,
    ) -> None:
        self.app = app
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.tokens = tokens
        self._requests = metrics.requests
        self._latency = metrics.latency.labels(PATH, "POST")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        try:
            raw = await _body(receive)
            if raw is None:  # the client went away
                return
            headers = [_JSON]
            try:
                principal = resolve_caller(
                    self.tokens, self.store, _header(scope, b"authorization")
                )
                body = await lookup_body(self.store, self.settings, self.metrics, principal, raw)
                content = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
                status = 200
            except Exception as exc:  # every failure becomes a JSON error body
                status, type_, message, extra = describe_error(exc, "POST", PATH)
                agent = _header(scope, b"user-agent")
                content = error_content(exc, type_, message, path=PATH, user_agent=agent)
                headers.extend((k.lower().encode(), v.encode()) for k, v in (extra or {}).items())
            headers.append((b"content-length", str(len(content)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content})
        finally:
            self._requests.labels(PATH, "POST", str(status)).inc()
            self._latency.observe(time.perf_counter() - start)


async def _body(receive: Receive) -> bytes | None:
    """The whole request body; None when the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
