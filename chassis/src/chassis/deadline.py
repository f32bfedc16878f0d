"""Deadlines that travel: a request carries how long its caller still waits, and no one works past it.

One header, ``X-Deadline-Ms``: the milliseconds the caller will still wait for this answer
(relative, like gRPC's ``grpc-timeout`` and Envoy's ``x-envoy-expected-rq-timeout-ms``, so no
clocks need agree). ``DeadlineMiddleware`` reads it (or gives a request without it the service's
``deadline.edge_s``: the gateways' BFF budget; the gateways ignore the header, a client's short
deadline is not theirs to follow) into the request's context and tags the server span
``deadline.remaining_ms``; ``Downstream`` sends each call what is left of it and never waits
longer; a request that arrives expired is answered 504 at once.

Work is dropped at checkpoints, not killed mid-way: on arrival, after an injected chaos delay and
before each store transaction (``check``: 504, counted ``deadline_exceeded`` on the dashboard and
logged); a downstream call is not sent either (``DownstreamUnavailable`` "deadline": its fallback,
or a 503). A handler is never cancelled half-way: what it started it compensates
(``suspended()``: no deadline for the cleanup), and the caller's Idempotency-Key makes its retry
safe either way.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry import trace
from starlette.types import ASGIApp, Receive, Scope, Send

from chassis.errors import ServiceError, problem_response
from chassis.paths import exempt
from chassis.state import chassis_state

__all__ = ["HEADER", "DeadlineExceeded", "DeadlineMiddleware", "check", "remaining_s", "suspended"]

log = logging.getLogger(__name__)

HEADER = "x-deadline-ms"
_HEADER_BYTES = HEADER.encode()


@dataclass
class _Deadline:
    at: float  # time.monotonic() when the caller stops waiting
    dropped: str | None = None  # the checkpoint that found it passed


_deadline_var: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar("deadline", default=None)


class DeadlineExceeded(ServiceError):
    """The caller's deadline passed before this work began: no one is waiting for its answer."""

    status = 504
    title = "Deadline Exceeded"


def remaining_s() -> float | None:
    """Seconds until the current request's deadline (<= 0: passed), or None when it has none."""
    deadline = _deadline_var.get()
    return None if deadline is None else deadline.at - time.monotonic()


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """No deadline inside: for compensation and cleanup (releasing what a dropped request
    reserved), which must run however late it is."""
    token = _deadline_var.set(None)
    try:
        yield
    finally:
        _deadline_var.reset(token)


def check(before: str) -> None:
    """A checkpoint: raise ``DeadlineExceeded`` (504) if the request's deadline has passed, so the
    work ``before`` names is not started. Free when the request has no deadline."""
    deadline = _deadline_var.get()
    if deadline is None:
        return
    late = time.monotonic() - deadline.at
    if late >= 0:
        deadline.dropped = deadline.dropped or before
        raise DeadlineExceeded(f"The caller's deadline passed {late * 1000:.0f} ms before {before}.")


class DeadlineMiddleware:
    """Pure ASGI: sets the request's deadline from ``X-Deadline-Ms`` or ``deadline.edge_s``,
    answers an expired one at once, and counts and logs requests dropped at a checkpoint."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        state = chassis_state(scope["app"])
        settings = state.live.current.deadline
        budget_s = _received_s(scope) if settings.from_callers else None
        if budget_s is None:
            budget_s = settings.edge_s
        else:
            budget_s = min(budget_s, settings.max_s)
        if budget_s is None:
            await self.app(scope, receive, send)
            return
        trace.get_current_span().set_attribute("deadline.remaining_ms", round(budget_s * 1000))
        deadline = _Deadline(time.monotonic() + budget_s)
        token = _deadline_var.set(deadline)
        try:
            if budget_s <= 0:
                deadline.dropped = "arrival"
                response = problem_response(
                    504,
                    title=DeadlineExceeded.title,
                    detail="The caller's deadline had passed when this request arrived.",
                    instance=scope["path"],
                )
                await response(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            _deadline_var.reset(token)
            if deadline.dropped is not None:
                state.edge.record("deadline_exceeded")
                log.info(
                    "dropped %s %s: the caller's deadline passed before %s",
                    scope["method"],
                    scope["path"],
                    deadline.dropped,
                    extra={"deadline.dropped_before": deadline.dropped},
                )


def _received_s(scope: Scope) -> float | None:
    """The header's seconds: whole milliseconds, 0 to 999999999; anything else is as if absent
    (the caller's hint, not its request)."""
    for key, value in scope.get("headers", ()):
        if key == _HEADER_BYTES:
            return int(value) / 1000 if value.isdigit() and len(value) <= 9 else None
    return None
