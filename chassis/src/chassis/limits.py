"""Request body size limit: 413 problem+json before a large body is buffered.

Pure ASGI. A declared ``Content-Length`` over the limit is refused when the app first asks for
the body; a chunked body is counted as it streams and refused when it crosses the limit. Both
raise HTTP 413 inside the app, so the chassis error handler renders problem+json with the trace id.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodySizeLimit"]

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
                raise HTTPException(413, detail=self._detail())
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, detail=self._detail())
            return message

        await self.app(scope, limited_receive, send)

    def _detail(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes."


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
