"""The request body limit (``api.max_body_bytes``), enforced before any body is read whole.

An ASGI middleware in front of everything else: a request whose ``Content-Length`` is over the
limit is answered 413 at once, without reading a byte of its body; a body without a length
(``Transfer-Encoding: chunked``) is counted as it streams in, and the 413 comes as soon as the
count passes the limit. Either way the server never holds more than the limit of one body, where
reading first and checking after let a 150 MB body cost 450 MB of memory.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response

__all__ = ["BodyLimit", "BodyTooLargeError"]


class BodyTooLargeError(ApiError):
    """A request body over ``api.max_body_bytes`` (413)."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        told = f"the request body is {size} bytes" if size is not None else "the request body"
        super().__init__(
            413,
            "PayloadTooLarge",
            f"{told} exceeds the limit of {limit} bytes (api.max_body_bytes): "
            "split the request, or raise the limit in featurestore.yaml",
            # The server then drops the unread rest of the body with the connection instead of
            # reading it to reuse the connection.
            headers={"Connection": "close"},
        )


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with a 413 JSON error."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None:
            if length > self.max_bytes:
                await _refuse(BodyTooLargeError(self.max_bytes, length), scope, receive, send)
                return
            # The server delivers no more than the declared length: nothing left to count.
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a body of unknown length, counting its bytes as the app reads them."""
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError as exc:
            # Routes map it to 413 themselves; this catches the paths that read the body
            # before their error handling starts (api.fastpath).
            if started:
                raise
            await _refuse(exc, scope, receive, send)


async def _refuse(exc: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(exc.status, exc.type, exc.message, headers=exc.headers)
    await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
