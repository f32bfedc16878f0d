"""Request body limits: 413 problem+json while the body streams in, never after buffering it.

Two ways in, one rule (count as the chunks arrive, stop at the limit):

- ``BodySizeLimit`` (``create_app(..., max_body_bytes=...)``): one limit for every route of a
  service, pure ASGI. A declared ``Content-Length`` over the limit is refused when the app first
  asks for the body; a chunked body is counted as it streams and refused when it crosses the limit.
- ``read_limited_body(request, limit=...)``: a route's own limit, for a route that reads its raw
  body itself (a credentials form, a webhook, a text value). ``await request.body()`` followed by
  a size check would read the whole body, however large, before refusing it.

Both raise HTTP 413 inside the app, so the chassis error handler renders problem+json with the
trace id.
"""

from __future__ import annotations

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.errors import ServiceError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodySizeLimit", "read_limited_body"]

DEFAULT_MAX_BODY_BYTES = 64 * 1024


class BodySizeLimit:
    """``app.add_middleware(BodySizeLimit, max_bytes=...)``."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        seen = 0

        async def limited_receive() -> Message:
            # Raised where the app reads the body, so the chassis handlers render it (with the
            # trace id); a declared oversize body is refused before a byte of it is read.
            nonlocal seen
            if declared is not None and declared > self.max_bytes:
                raise _too_large(self.max_bytes)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _too_large(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


class UnsupportedMediaType(ServiceError):
    status = 415
    title = "Unsupported Media Type"


async def read_limited_body(request: Request, *, limit: int, content_type: str | None = None) -> bytes:
    """The raw body, refused with 413 problem+json as soon as it passes ``limit`` bytes (at once
    when ``Content-Length`` declares more), and with 415 when ``content_type`` is given and the
    body is of another type."""
    if content_type is not None:
        actual = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if actual != content_type:
            raise UnsupportedMediaType(f"Send the body as {content_type}.")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)  # the rest is never read into memory
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> HTTPException:
    # An HTTPException rather than a ServiceError: FastAPI turns any other error raised while it
    # reads a request body into a 400.
    return HTTPException(413, detail=f"The request body may hold at most {limit} bytes.")


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
