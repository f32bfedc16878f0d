"""Load shedding: past its capacity a service answers 503 at once instead of queueing.

A request that finds the adaptive concurrency limit reached is answered 503 problem+json
"Service Overloaded" with ``Retry-After: 1`` without running the app: no routing, no handler, and
no span (under overload most requests are shed, and a span each would cost more than the answer).
It still gets its ``X-Request-ID`` and access-log line. Health, ops and docs routes are never
shed nor counted, so probes and operators get through an overload. Settings: ``shed.*``
(``ShedSettings``), live.

The server decides first (``chassis.server``, given the app's ``LoadShedder`` by ``serve()``): it
refuses a request as its head is read, in the socket's read callback, before a task is made for
it. In a saturated event loop a task waits for a turn of its own (tenths of a second) before the
app could refuse it; refused at its head, a request waits only for the turn in progress, which the
limit keeps short (at most the limit's worth of requests). ``LoadShedding``, the outermost ASGI
layer of every chassis app (``install``, from ``create_app``), then admits each request, and
refuses those the load rose for since their head (or that the server did not decide: pipelined
behind another, or served without the chassis server), inside the chassis
``RequestContextMiddleware``. Either refusal is counted once (``LoadShedder.refused``).

The limit is AIMD (Netflix concurrency-limits' ``AIMDLimit``), not Gradient or Vegas: those read
queueing from each latency's ratio to a minimum one, which Python's latencies on 2 shared cores
(GC pauses, routes 100x apart) make noise. AIMD needs a yes/no signal on an absolute target: an
answer later than ``latency_target_s`` or a loop lag over ``max_loop_lag_s`` cuts the
limit by ``backoff_ratio``, once per generation of requests (a stall slows many: one cut). Timely
answers raise it (+1 each under ``initial_limit``, then +1 per limit's worth while it is in use).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.bff import BffSettings
from chassis.breakers import RollingCounts
from chassis.errors import problem_response
from chassis.middleware import RequestContextMiddleware
from chassis.paths import exempt
from chassis.settings import LiveSettings, ServiceSettings, ShedSettings
from chassis.state import chassis_state, provide

__all__ = ["OVERLOADED_DETAIL", "AimdLimit", "LoadShedder", "LoadShedding", "install", "overloaded_response"]

log = logging.getLogger(__name__)

SAMPLE_EVERY_S = 0.05  # the loop-lag sampler's sleep: one timer, fine enough to see a stall
REPORT_EVERY_S = 5.0  # at most one "shedding" log line this often
QUIET_S = 2.0  # this long without a shed request: shedding has stopped
DEFAULT_LATENCY_TARGET_S = 1.0
RETRY_AFTER = {"Retry-After": "1"}


class AimdLimit:
    """The adaptive concurrency limit. Arithmetic only: the caller passes clock readings and the
    live ``ShedSettings`` (a config change applies to the next request)."""

    def __init__(self, initial: int) -> None:
        self.value = float(initial)
        self._cut_at = -math.inf  # when the limit was last cut

    def bounded(self, shed: ShedSettings) -> int:
        """The limit in force: requests in flight at or over it are shed."""
        return max(shed.min_limit, min(int(self.value), shed.max_limit))

    def answered(
        self,
        shed: ShedSettings,
        *,
        started: float,
        now: float,
        status: int,
        load: int,
        target_s: float,
        loop_lag_s: float = 0.0,
    ) -> None:
        """One admitted request answered (``load``: the requests it ran with, itself included)."""
        # Only this process's own signals: a 503/504 may be a downstream's outage or a caller's
        # expired deadline (anyone can send X-Deadline-Ms: 0), neither of them our overload.
        if now - started > target_s:
            self.congested(shed, since=started, now=now)
        elif loop_lag_s > shed.max_loop_lag_s:
            pass  # no growth while the loop is late: a request's own time leaves out its wait for it
        elif self.value < shed.initial_limit:
            self.value = max(self.value, shed.min_limit) + 1  # back to the initial limit quickly
        elif load * 2 >= self.value:
            # Past it, +1 per limit's worth of answers (TCP's congestion avoidance), and only for a
            # limit in use: an idle service must not drift to max_limit, then let a burst in unchecked.
            self.value = min(self.value + 1 / self.value, shed.max_limit)

    def congested(self, shed: ShedSettings, *, since: float, now: float) -> bool:
        """Cut the limit for a congestion signal observed from ``since`` to ``now``; True if cut.

        A signal that began before the last cut was caused under the old limit and says nothing
        of the new one (TCP cuts once per round trip likewise): it is ignored."""
        if since < self._cut_at:
            return False
        self._cut_at = now
        self.value = max(self.bounded(shed) * shed.backoff_ratio, shed.min_limit)
        return True


class LoadShedder:
    """One app's shedding state (``resource(app, LoadShedder)``): the limit, the requests in
    flight, the loop lag, and the counts behind ``/ops/telemetry`` and the log lines.

    The load held against the limit is the requests in flight plus those answered in the event
    loop's current turn. A handler that computes without awaiting is answered before the next one
    starts: in flight alone would stay at 1 while hundreds of requests wait for the loop. Counting
    a turn's answers until the loop has run everything that was ready with them makes the limit
    bound the work one turn takes on, and so how long the requests in the next one wait. Heads
    the server let through in this turn count too (``passed``): their tasks all run in the next
    turn, and without them the server would let a whole crowd through for the app to refuse."""

    def __init__(self, live: LiveSettings[Any], edge: RollingCounts) -> None:
        self.live = live
        self.edge = edge
        self.limit = AimdLimit(live.current.shed.initial_limit)
        self.in_flight = 0
        self.answered_this_turn = 0
        self.passed_this_turn = 0  # heads the server handed to the app this turn (their tasks: next)
        self.shed = 0  # requests shed since the start
        self.loop_lag_s = 0.0  # the last sample
        self._turn_loop: asyncio.AbstractEventLoop | None = None  # where the turn's end is scheduled
        self._seen = self._logged_total = 0
        self._logged_at = self._last_shed_at = -math.inf
        self._shedding = False

    def target_s(self, settings: ServiceSettings) -> float:
        if settings.shed.latency_target_s is not None:
            return settings.shed.latency_target_s
        bff = getattr(settings, "bff", None)  # a BFF answers within its budget unless it queues
        return bff.budget_s if isinstance(bff, BffSettings) else DEFAULT_LATENCY_TARGET_S

    def load(self) -> int:
        """The requests held against the limit now: in flight, plus answered in this loop turn,
        plus handed to the app in it by the server (``passed``)."""
        if self._turn_loop is not asyncio.get_running_loop():  # a loop that ended before the turn did
            self.answered_this_turn = self.passed_this_turn = 0
        return self.in_flight + self.answered_this_turn + self.passed_this_turn

    def passed(self) -> None:
        """The server handed a request head to the app: its task runs in the loop's next turn,
        when this count is over, and ``admit`` counts it then. Till then, this turn's load."""
        self._this_turn(asyncio.get_running_loop())
        self.passed_this_turn += 1

    def overloaded(self, shed: ShedSettings) -> bool:
        """Would a request arriving now be shed? Counts nothing: the server asks it of every
        request head (``chassis.server``), and ``refused()`` counts the ones it answers 503."""
        return self.load() >= self.limit.bounded(shed)

    def refused(self) -> None:
        """Count one request shed, by the server (``chassis.server``) or by ``admit``."""
        self.shed += 1
        self.edge.record("shed")

    def admit(self, shed: ShedSettings) -> int:
        """The load with this request let in; 0: shed it (counted, and nothing else done)."""
        load = self.load()
        if load >= self.limit.bounded(shed):
            self.refused()
            return 0
        self.in_flight += 1
        return load + 1

    def answered(self, started: float, now: float, status: int, load: int) -> None:
        self.in_flight -= 1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a request closed as its loop went away: no turn to count it in
            return
        self._this_turn(loop)
        self.answered_this_turn += 1
        settings = self.live.current
        self.limit.answered(
            settings.shed,
            started=started,
            now=now,
            status=status,
            load=load,
            target_s=self.target_s(settings),
            loop_lag_s=self.loop_lag_s,
        )

    def _this_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._turn_loop is not loop:  # the end of this turn: once the loop has run what is ready now
            self.answered_this_turn = self.passed_this_turn = 0
            self._turn_loop = loop
            loop.call_soon(self._end_turn)

    def _end_turn(self) -> None:
        self.answered_this_turn = self.passed_this_turn = 0
        self._turn_loop = None

    def snapshot(self) -> dict[str, Any]:
        shed = self.live.current.shed
        return {
            "enabled": shed.enabled,
            "limit": self.limit.bounded(shed),
            "in_flight": self.in_flight,
            "loop_lag_ms": round(self.loop_lag_s * 1000, 1),
            "shed": self.shed,
            "latency_target_s": self.target_s(self.live.current),
        }

    async def sample_loop_lag(self) -> None:
        """Forever: sleep ``SAMPLE_EVERY_S`` and take the oversleep as the loop's lag (how long a
        ready callback waits for the loop); a lag over ``max_loop_lag_s`` cuts the limit."""
        while True:
            started = time.monotonic()
            await asyncio.sleep(SAMPLE_EVERY_S)
            now = time.monotonic()
            self.loop_lag_s = max(0.0, now - started - SAMPLE_EVERY_S)
            shed = self.live.current.shed
            if shed.enabled and self.loop_lag_s > shed.max_loop_lag_s:
                self.limit.congested(shed, since=started, now=now)
            self._report(now)

    def _report(self, now: float) -> None:
        """A log line when shedding starts, every ``REPORT_EVERY_S`` while it goes on, and when it
        has stopped: never one per shed request."""
        if self.shed > self._seen:
            self._seen, self._last_shed_at = self.shed, now
            if now - self._logged_at >= REPORT_EVERY_S:
                log.warning(
                    "load shedding %s: %d requests answered 503 since the last line "
                    "(limit %d, %d in flight, loop lag %.0f ms)",
                    "goes on" if self._shedding else "started",
                    self.shed - self._logged_total,
                    self.limit.bounded(self.live.current.shed),
                    self.in_flight,
                    self.loop_lag_s * 1000,
                )
                self._shedding, self._logged_at, self._logged_total = True, now, self.shed
        elif self._shedding and now - self._last_shed_at >= QUIET_S:
            log.warning(
                "load shedding stopped: %d requests answered 503 since the last line (limit %d)",
                self.shed - self._logged_total,
                self.limit.bounded(self.live.current.shed),
            )
            self._shedding, self._logged_at, self._logged_total = False, now, self.shed


class LoadShedding:
    """Pure ASGI: lets a request in while the load is under the limit, else refuses it."""

    def __init__(self, app: ASGIApp, shedder: LoadShedder) -> None:
        self.app = app
        self.shedder = shedder
        self._refuse = RequestContextMiddleware(_overloaded)  # request id and access line

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        shedder = self.shedder
        shed = shedder.live.current.shed
        if scope["type"] != "http" or not shed.enabled or exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        load = shedder.admit(shed)
        if not load:
            await self._refuse(scope, receive, send)
            return
        started = time.monotonic()
        status, answered_at = 0, 0.0

        async def timed_send(message: Message) -> None:
            # Latency to the response head: a streamed body (an SSE stream) is not queueing.
            nonlocal status, answered_at
            if message["type"] == "http.response.start":
                status, answered_at = message["status"], time.monotonic()
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            shedder.answered(started, answered_at or time.monotonic(), status, load)


# The detail of a shed request's 503: a client (or a test) tells a shed refusal from a failure by it.
OVERLOADED_DETAIL = "The service is past its capacity right now; retry after Retry-After seconds."


def overloaded_response(path: str) -> JSONResponse:
    """The answer to a shed request, from the ASGI layer or from the server: 503 problem+json
    "Service Overloaded" with ``Retry-After: 1`` (and the current request id, if any)."""
    return problem_response(
        503,
        title="Service Overloaded",
        detail=OVERLOADED_DETAIL,
        instance=path,
        headers=RETRY_AFTER,
    )


async def _overloaded(scope: Scope, receive: Receive, send: Send) -> None:
    await overloaded_response(scope["path"])(scope, receive, send)


def install(app: FastAPI) -> LoadShedder:
    """Make shedding the app's outermost layer, outside tracing and Starlette's error middleware
    (it wraps what ``build_middleware_stack`` builds), and run the loop-lag sampler for the app's
    lifespan."""
    state = chassis_state(app)
    shedder = provide(app, LoadShedder(state.live, state.edge))
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: LoadShedding(build(), shedder)  # type: ignore[method-assign]
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        sampler = asyncio.create_task(shedder.sample_loop_lag(), name="loop-lag")
        try:
            async with inner(app) as value:
                yield value
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler

    app.router.lifespan_context = lifespan
    return shedder
