"""The per-request ASGI middleware: request id, access log line, and the last-resort 500."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.context import request_id_var, user_var
from chassis.errors import problem_response
from chassis.paths import matcher

__all__ = ["RequestContextMiddleware"]

access_log = logging.getLogger("access")
error_log = logging.getLogger("chassis.errors")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
_QUIET_PATHS = ("/health/*",)  # probes every few seconds: their lines would drown the rest


class RequestContextMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware copy of the body): sets the request id, logs one access
    line per request, and turns an unhandled exception into a problem+json 500 that leaks nothing.
    Health probes and ``quiet_paths`` (``/x``, or ``/x/*`` for all below ``/x/``) log it at DEBUG
    unless refused or failed (4xx, 5xx)."""

    def __init__(self, app: ASGIApp, quiet_paths: Iterable[str] = ()) -> None:
        self.app = app
        self._quiet = matcher([*_QUIET_PATHS, *quiet_paths])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        rid_token = request_id_var.set(request_id)
        user_token = user_var.set(None)
        status = 500
        started = False
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            error_log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            trace.get_current_span().record_exception(exc)  # the request's span (ServerSpans)
            if not started:
                response = problem_response(
                    500, detail="An unexpected error occurred.", instance=scope["path"]
                )
                await response(scope, receive, send_with_id)
        finally:
            duration_ms = round((time.perf_counter() - start) * 1000, 2)
            path = scope["path"]
            level = logging.DEBUG if status < 400 and self._quiet(path) else logging.INFO
            access_log.log(
                level,
                "%s %s %s %.1fms",
                scope["method"],
                path,
                status,
                duration_ms,
                extra={
                    "http.method": scope["method"],
                    "http.path": path,
                    "http.status_code": status,
                    "http.duration_ms": duration_ms,
                    "http.route": _route(scope),
                },
            )
            request_id_var.reset(rid_token)
            user_var.reset(user_token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _route(scope: Scope) -> str | None:
    route = scope.get("route")
    return getattr(route, "path", None)
