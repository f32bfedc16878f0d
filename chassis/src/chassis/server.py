"""The HTTP server's own limits: request head size and time, open connections per process.

uvicorn's httptools protocol reads a request head of any size for as long as the client takes,
so one client can hold memory (an unfinished 64 MiB header is 64 MiB) and connections for ever.
``LimitedHttpProtocol`` is that protocol with three checks, set by ``ServerSettings``
(``SERVER__MAX_HEADER_BYTES``, ``SERVER__HEADER_TIMEOUT_S``, ``SERVER__MAX_CONNECTIONS``):

- a request head (request line and headers) over ``max_header_bytes`` is answered 431; an
  unfinished one as soon as that many bytes of it have arrived, so no more of it is buffered;
- a head not complete ``header_timeout_s`` after the connection opened (on a kept-alive
  connection: after the request's first byte) is answered 408;
- a request arriving while ``max_connections`` connections are open, or that many requests
  run, is answered 503.

The answers are problem+json and close the connection. ``serve()`` runs every service with
``server_options(settings.server)``; give the same options to ``uvicorn.Config`` to run an app
in a test with the limits of production.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from starlette.responses import JSONResponse
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from chassis.errors import problem_response
from chassis.settings import ServerSettings

__all__ = ["LimitedHttpProtocol", "server_options"]

# After a refusal written here, what the client still sends is read and dropped, up to
# max_header_bytes or this long: closing with unread input resets the connection, and the
# client might never read the answer.
LINGER_S = 2.0


def server_options(limits: ServerSettings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` / ``uvicorn.Config`` that enforce ``limits``."""
    protocol = type("LimitedHttpProtocol", (LimitedHttpProtocol,), {"limits": limits})
    return {"http": protocol, "backlog": limits.backlog}


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (one instance per connection) with the limits of ``limits``."""

    limits: ClassVar[ServerSettings] = ServerSettings()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the next bytes received belong to a request head
        self._heads = 0  # request heads completed on this connection
        self._head_bytes = 0  # request target and headers of the current head, as parsed
        self._unfinished = 0  # bytes received while the current head is incomplete
        self._head_timer: asyncio.TimerHandle | None = None
        self._drain: int | None = None  # after a refusal: bytes still read and dropped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()  # a connection that sends nothing is a head that never completes

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._drain is not None:
            self._drain -= len(data)
            if self._drain < 0:
                self.transport.close()
            return
        whole_read_in_head, heads = self._in_head, self._heads
        super().data_received(data)  # parses: the callbacks below run
        if not self._in_head or self.transport.is_closing():
            return
        # httptools buffers an unfinished header until its end arrives, so count raw bytes. A read
        # that also ended the previous request is left out: part of it may have been a body.
        if whole_read_in_head and heads == self._heads:
            self._unfinished += len(data)
        if self._unfinished > self.limits.max_header_bytes:
            self._refuse(431, self._too_large())

    # httptools callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._start_head_timer()  # no-op on a new connection: its timer runs since it opened

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head, self._heads, self._unfinished = False, self._heads + 1, 0
        self._stop_head_timer()
        refusal = self._refusal()
        if refusal is None:
            super().on_headers_complete()
            return
        # uvicorn's own way for its concurrency limit: another ASGI app answers this request.
        # (uvicorn parses the request target first: one over 64 KiB gets its own 400.)
        app, self.app = self.app, refusal
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        self._in_head = True
        super().on_message_complete()

    # limits

    def _refusal(self) -> JSONResponse | None:
        if self._head_bytes > self.limits.max_header_bytes:
            return _problem(431, self._too_large())
        bound = self.limits.max_connections
        if len(self.connections) > bound or len(self.tasks) >= bound:
            self.logger.warning("answering 503: %d connections open", len(self.connections))
            return _problem(503, "The server has too many open connections; retry.", {"Retry-After": "1"})
        return None

    def _too_large(self) -> str:
        return f"The request line and headers may hold at most {self.limits.max_header_bytes} bytes."

    def _start_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(408, f"The request head did not arrive within {self.limits.header_timeout_s:g} s.")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer a request head the app never saw, and close the connection."""
        self._stop_head_timer()
        self._in_head = False
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a pipelined request's response is on the wire: no room for ours
            return
        response = _problem(status, detail)
        head = b"".join(name + b": " + value + b"\r\n" for name, value in response.raw_headers)
        self.transport.write(STATUS_LINE[status] + head + b"\r\n" + response.body)
        self._drain = self.limits.max_header_bytes
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client reads the answer, then the end
        self.loop.call_later(LINGER_S, self.transport.close)


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return problem_response(status, detail=detail, headers={**(headers or {}), "Connection": "close"})
