"""The HTTP server's own limits and its shedding: what is decided before a request reaches the app.

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

These answers are problem+json and close the connection.

Given the app's ``LoadShedder`` (``chassis.shedding``), the protocol also sheds: a complete
request head that finds the shedder at its limit (``shed.*`` on, the path not exempt) is answered
503 "Service Overloaded" with ``Retry-After: 1`` from the socket's read callback, before any task
is made. In an overloaded process a task waits a whole turn of a saturated event loop (tenths of
a second) before the ASGI layer could refuse it; here the client waits only for the turn in
progress when its request arrived. The answer is counted, logged and worded as the ASGI layer's
(which still refuses a request whose load rose between its head and its task, or one pipelined
behind a response in progress). A request without a body keeps its connection; any other one's
is closed.

``serve()`` runs every service with ``server_options(settings.server, shedder)``; give the same
options to ``uvicorn.Config`` to run an app in a test with the limits of production.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid
from typing import Any, ClassVar

import httptools
from starlette.responses import JSONResponse
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from chassis.context import request_id_var
from chassis.errors import problem_response
from chassis.middleware import _SAFE_REQUEST_ID, access_log
from chassis.paths import exempt
from chassis.settings import ServerSettings
from chassis.shedding import LoadShedder, overloaded_response

__all__ = ["LimitedHttpProtocol", "server_options"]

# After a refusal written here, what the client still sends is read and dropped, up to
# max_header_bytes or this long: closing with unread input resets the connection, and the
# client might never read the answer.
LINGER_S = 2.0


def server_options(limits: ServerSettings, shedder: LoadShedder | None = None) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` / ``uvicorn.Config`` that enforce ``limits``, and shed
    with ``shedder`` (the app's: ``resource(app, LoadShedder)``) from the protocol; without it,
    only the app's ASGI layer sheds."""
    attributes = {"limits": limits, "shedder": shedder}
    protocol = type("LimitedHttpProtocol", (LimitedHttpProtocol,), attributes)
    return {"http": protocol, "backlog": limits.backlog}


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (one instance per connection) with the limits of ``limits``,
    shedding with ``shedder``."""

    limits: ClassVar[ServerSettings] = ServerSettings()
    shedder: ClassVar[LoadShedder | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the next bytes received belong to a request head
        self._heads = 0  # request heads completed on this connection
        self._head_bytes = 0  # request target and headers of the current head, as parsed
        self._unfinished = 0  # bytes received while the current head is incomplete
        self._head_timer: asyncio.TimerHandle | None = None
        self._drain: int | None = None  # after a refusal: bytes still read and dropped
        self._shed_message = False  # the current request was answered 503 here: its end is ours

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

    # (After a refusal that closes the connection, ``_drain`` is set and what the parser still
    # finds in the bytes it was given is ignored: the connection has had its last answer.)

    def on_message_begin(self) -> None:
        if self._drain is not None:
            return
        super().on_message_begin()
        self._head_bytes = 0
        self._shed_message = False
        # A request begins: the connection is not idle. (Normally data_received stops the
        # keep-alive timer; one armed by a shed request in this same read is stopped here.)
        self._unset_keepalive_if_required()
        self._start_head_timer()  # no-op on a new connection: its timer runs since it opened

    def on_url(self, url: bytes) -> None:
        if self._drain is not None:
            return
        self._head_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._drain is not None:
            return
        self._head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._drain is not None:
            return
        self._in_head, self._heads, self._unfinished = False, self._heads + 1, 0
        self._stop_head_timer()
        refusal = self._refusal()
        if refusal is None:
            if not self._shed():
                super().on_headers_complete()
            return
        # uvicorn's own way for its concurrency limit: another ASGI app answers this request.
        # (uvicorn parses the request target first: one over 64 KiB gets its own 400.)
        app, self.app = self.app, refusal
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_body(self, body: bytes) -> None:
        if self._drain is None and not self._shed_message:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._drain is not None:
            return
        self._in_head = True
        if self._shed_message:  # answered already: the connection is idle again, as after a response
            self._shed_message = False
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )
            return
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._drain is None:  # else the bytes after a refusal were bad: they are dropped anyway
            super().send_400_response(msg)

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
        self._close_after_answer()

    def _close_after_answer(self) -> None:
        self._drain = self.limits.max_header_bytes
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client reads the answer, then the end
        self.loop.call_later(LINGER_S, self.transport.close)

    # shedding

    def _shed(self) -> bool:
        """Answer the request whose head is complete 503 now if the app's shedder would refuse it
        (``chassis.shedding``); True if answered. Else the app runs it, and may shed it still."""
        shedder = self.shedder
        if shedder is None:
            return False
        shed = shedder.live.current.shed
        if (
            not shed.enabled
            or (self.cycle is not None and not self.cycle.response_complete)  # pipelined: its task waits
            or self.parser.should_upgrade()
        ):
            return False  # its turn comes with its task: the ASGI layer decides then
        try:
            raw_path = httptools.parse_url(self.url).path
        except httptools.HttpParserInvalidURLError:
            return False  # uvicorn answers it 400
        path = raw_path.decode("latin-1")
        if "%" in path:  # as uvicorn makes the scope's path, that the ASGI layer checks
            path = urllib.parse.unquote(path)
        path = self.root_path + path
        if exempt(path):
            return False
        if (
            not shedder.overloaded(shed)
            or self.flow.write_paused  # a client not reading its answers: the app's turn, flow control
            or self.transport.is_closing()
        ):
            shedder.passed()  # its task starts now, to run in the loop's next turn
            return False
        started = time.perf_counter()
        shedder.refused()
        # Keep the connection of a request without a body (by its framing: no Content-Length but 0,
        # no Transfer-Encoding): it has been read whole, the parser is at the next request's
        # start, and the refused client retries on it. Closing it would cost an accept and a
        # handshake per refusal, and an overloaded process accepts late: uvloop takes one new
        # connection per loop turn, so a reconnecting client would wait seconds for its next
        # answer. Close any other: a body we answered before reading (a client that sent
        # "Expect: 100-continue" may never send it) would leave the parser inside it.
        keep_alive = (
            not self.expect_100_continue
            and self.parser.should_keep_alive()
            and self.parser.get_http_version() != "1.0"
            and all(
                name != b"transfer-encoding" and (name != b"content-length" or value.strip() == b"0")
                for name, value in self.headers
            )
        )
        method = self.parser.get_method().decode("ascii", "replace")
        incoming = next((value for name, value in self.headers if name == b"x-request-id"), b"")
        request_id = incoming.decode("latin-1")
        if not _SAFE_REQUEST_ID.match(request_id):  # the request context middleware's rule
            request_id = uuid.uuid4().hex
        token = request_id_var.set(request_id)  # the problem's request_id
        try:
            response = overloaded_response(path)
        finally:
            request_id_var.reset(token)
        headers = [
            *self.server_state.default_headers,
            *response.raw_headers,
            (b"x-request-id", request_id.encode()),
        ]
        if not keep_alive:
            headers.append((b"connection", b"close"))
        head = STATUS_LINE[503] + b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        head += b"\r\n"
        self.transport.write(head if method == "HEAD" else head + response.body)
        self.server_state.total_requests += 1  # as uvicorn counts every answered request
        if keep_alive:
            self._shed_message = True  # on_message_complete, at once (no body): idle again
        else:
            self._close_after_answer()
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        access_log.info(  # the line the request context middleware writes for the ASGI layer's 503
            "%s %s %s %.1fms",
            method,
            path,
            503,
            duration_ms,
            extra={
                "http.method": method,
                "http.path": path,
                "http.status_code": 503,
                "http.duration_ms": duration_ms,
                "http.route": None,
                "request_id": request_id,
            },
        )
        return True


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return problem_response(status, detail=detail, headers={**(headers or {}), "Connection": "close"})
