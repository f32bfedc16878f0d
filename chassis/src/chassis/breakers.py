"""Named circuit breakers (pybreaker) whose state replicas share through Redis, and rolling metrics.

A healthy call costs no Redis command: every process reads the state of its breakers from its own
memory (``SharedBreakerStorage``) and writes to Redis only when something happens -- a failure
(the shared failure count, which adds up the failures of every replica), a success after failures
this process knows of (its own, or others' at the last resync: the count back to 0), a half-open
trial, a transition (the state, in one transaction, published on ``STATE_CHANNEL``).
``BreakerRegistry.share`` listens on that channel, so a circuit one replica opens is open in the
others a message later (milliseconds; ``scripts/bench_breaker.py`` measures it), and re-reads the
shared state every ``resync_s`` and after each reconnection for what the channel missed. While
Redis is unreachable each process goes on with its own state (a warning per breaker every 5 s at
most); when Redis answers again, what a process decided meanwhile is newer than what Redis holds,
so it is written there and published, not undone by the next resync.

Why not pybreaker's ``CircuitRedisStorage``: it reads Redis on every call (two round trips,
synchronous, on the event loop) and during an outage logs a stack trace and pays the socket
timeout on every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pybreaker
import redis
import redis.asyncio as aioredis
from opentelemetry.instrumentation.utils import suppress_instrumentation

from chassis.pubsub import subscribe_forever
from chassis.settings import BreakerSettings

__all__ = [
    "STATE_CHANNEL",
    "Breaker",
    "BreakerRegistry",
    "RollingCounts",
    "RollingMetrics",
    "SharedBreakerStorage",
]

log = logging.getLogger(__name__)

KEY_PREFIX = "msa:breaker"
STATE_CHANNEL = "msa:breaker:transitions"  # + ":<db>", see channel_for
_FIELDS = ("state", "fail_counter", "success_counter", "opened_at")
_REDIS_COOLDOWN_S = 5.0


def channel_for(db: int) -> str:
    """Pub/sub ignores the database number: the channel carries it, so callers sharing one Redis
    server on different databases (test stacks, several demos) never adopt each other's circuits."""
    return f"{STATE_CHANNEL}:{db}"


def _channel_of(client: redis.Redis | aioredis.Redis) -> str:
    return channel_for(int(client.connection_pool.connection_kwargs.get("db", 0)))


class SharedBreakerStorage(pybreaker.CircuitBreakerStorage):
    """One breaker's state: read from memory, written to Redis (shared by the caller's replicas)
    only on failures and transitions. See the module docstring."""

    def __init__(self, name: str, client: redis.Redis) -> None:
        super().__init__(name)
        self._redis = client
        self._prefix = f"{KEY_PREFIX}:{name}:"
        self._channel = _channel_of(client)
        self._state: str = pybreaker.STATE_CLOSED
        self._fails = 0
        self._successes = 0
        self._opened_at: datetime | None = None
        self._down_until = 0.0
        self.origin = uuid.uuid4().hex  # tells this storage's own published transitions apart
        self.version = 0  # local changes so far: a resync read before one must not undo it
        self.unshared = False  # a write was skipped (Redis unreachable): ours is newer than Redis's
        # start from the shared state: a replica started while the circuit is open keeps it open
        self._guard(lambda: self.adopt(self._read_shared()), write=False)

    # What pybreaker reads on every call comes from memory; what happens (a transition, a
    # failure, the reset after failures) is written through to Redis.

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, state: str) -> None:
        self._state = state
        self.version += 1
        self._guard(self._write_state)

    def _write_state(self) -> None:
        """The state as this process has it, in one transaction, and published (a closed circuit
        starts counting from zero everywhere)."""
        state = self._state
        opened = self._opened_at.timestamp() if self._opened_at and state == pybreaker.STATE_OPEN else None
        values: dict[str, Any] = {self._prefix + "state": state}
        if opened is not None:
            values[self._prefix + "opened_at"] = opened
        if state == pybreaker.STATE_CLOSED:
            values[self._prefix + "fail_counter"] = values[self._prefix + "success_counter"] = 0
        event = json.dumps({"name": self.name, "state": state, "opened_at": opened, "origin": self.origin})
        pipe = self._redis.pipeline(transaction=True)
        pipe.mset(values)
        pipe.publish(self._channel, event)
        pipe.execute()
        self.unshared = False  # the whole state is in Redis again

    def push(self) -> None:
        """Redis answers again (``share`` could read it): write what happened here meanwhile, so
        the other replicas learn of it and a resync does not undo it."""
        self._down_until = 0.0
        self._guard(self._write_state)

    @property
    def counter(self) -> int:
        return self._fails

    @property
    def success_counter(self) -> int:
        return self._successes

    @property
    def opened_at(self) -> datetime | None:
        return self._opened_at

    @opened_at.setter
    def opened_at(self, now: datetime) -> None:
        self._opened_at = now  # written with the state that follows it (``CircuitBreaker.open``)

    def increment_counter(self) -> None:
        # the shared count: consecutive failures seen by any replica open the circuit
        self.version += 1
        shared = self._guard(lambda: self._redis.incr(self._prefix + "fail_counter"))
        self._fails = int(shared) if shared is not None else self._fails + 1

    def reset_counter(self) -> None:
        if self._fails == 0:
            return  # the healthy path: nothing to reset, nothing to write
        self._fails = 0
        self.version += 1
        self._guard(lambda: self._redis.set(self._prefix + "fail_counter", 0))

    def increment_success_counter(self) -> None:
        self.version += 1
        shared = self._guard(lambda: self._redis.incr(self._prefix + "success_counter"))
        self._successes = int(shared) if shared is not None else self._successes + 1

    def reset_success_counter(self) -> None:
        if self._successes == 0:
            return
        self._successes = 0
        self.version += 1
        self._guard(lambda: self._redis.set(self._prefix + "success_counter", 0))

    # What the other replicas did (``BreakerRegistry.share``).

    def keys(self) -> list[str]:
        return [self._prefix + field for field in _FIELDS]

    def adopt(self, values: list[Any]) -> None:
        """Take the shared state (``values``: the raw ``keys()``); none yet: closed."""
        raw_state, fails, successes, opened = (
            value.decode() if isinstance(value, bytes) else value for value in values
        )
        try:
            counts = int(fails or 0), int(successes or 0)
            opened_at = datetime.fromtimestamp(float(opened), UTC) if opened else None
        except (ValueError, TypeError, OverflowError):
            log.warning("breaker %s: shared state unreadable; keeping this process's", self.name)
            return
        self._state = str(raw_state) if raw_state in _STATES else pybreaker.STATE_CLOSED
        (self._fails, self._successes), self._opened_at = counts, opened_at

    def adopt_transition(self, state: str, opened_at: float | None) -> None:
        """Another replica moved this circuit (published on ``STATE_CHANNEL``)."""
        self._state = state
        if opened_at is not None:
            self._opened_at = datetime.fromtimestamp(opened_at, UTC)
        if state == pybreaker.STATE_CLOSED:
            self._fails = 0  # the replica that closed it reset the shared count

    def _read_shared(self) -> list[Any]:
        values: list[Any] = self._redis.mget(self.keys())
        return values

    def _guard(self, op: Callable[[], Any], *, write: bool = True) -> Any:
        """Run one Redis operation; while Redis is unreachable (and for a cool-down after each
        error) skip it: the state in memory goes on alone, and is pushed when Redis is back."""
        if time.monotonic() < self._down_until:
            self.unshared = self.unshared or write
            return None
        try:
            with suppress_instrumentation():  # bookkeeping, not a step of the request's trace
                result = op()
        except (redis.RedisError, OSError) as exc:
            self.unshared = self.unshared or write
            log.warning(
                "breaker %s: Redis unreachable (%s); using local state for %.0fs",
                self.name,
                type(exc).__name__,
                _REDIS_COOLDOWN_S,
            )
            self._down_until = time.monotonic() + _REDIS_COOLDOWN_S
            return None
        if self._down_until:
            self._down_until = 0.0
            log.info("breaker %s: Redis reachable again; state is shared again", self.name)
        return result


class RollingCounts:
    """Counts of named events over the last ``window_s`` seconds, in one-second buckets (the
    Hystrix rolling window). Thread-safe: the store's worker threads record too."""

    def __init__(
        self, events: tuple[str, ...], window_s: int = 10, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.events = events
        self.window_s = window_s
        self._clock = clock
        self._buckets: deque[tuple[int, dict[str, int]]] = deque()
        self._lock = threading.Lock()

    def record(self, event: str) -> float:
        """Count one ``event`` now; returns the clock's reading."""
        now = self._clock()
        second = int(now)
        with self._lock:
            if not self._buckets or self._buckets[-1][0] != second:
                self._buckets.append((second, dict.fromkeys(self.events, 0)))
            self._buckets[-1][1][event] += 1
            self._trim(now)
        return now

    def _trim(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - self.window_s:
            self._buckets.popleft()

    def counts(self) -> dict[str, int]:
        with self._lock:
            self._trim(self._clock())
            counts = dict.fromkeys(self.events, 0)
            for _, bucket in self._buckets:
                for event, n in bucket.items():
                    counts[event] += n
        return counts


class RollingMetrics:
    """One breaker's rolling counts (``EVENTS``) and latencies, over ``window_s`` seconds.

    ``rejected``: refused by the bulkhead (too many calls in flight); ``retried``: attempts after
    the first (a call retried twice is one success or failure plus two ``retried``);
    ``bad_request``: the callee refused the request itself (a 4xx, ``chassis.http``): Hystrix's
    bad request, a request but neither a success nor a failure of the callee."""

    EVENTS = (
        "success",
        "bad_request",
        "failure",
        "timeout",
        "short_circuited",
        "rejected",
        "retried",
        "fallback_success",
        "fallback_failure",
    )

    def __init__(self, window_s: int = 10, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._counts = RollingCounts(self.EVENTS, window_s, clock)
        self._latencies: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()

    def record(self, event: str, latency_ms: float | None = None) -> None:
        now = self._counts.record(event)
        if latency_ms is not None:
            with self._lock:
                self._latencies.append((now, latency_ms))
                self._trim(now)

    def counts(self) -> dict[str, int]:
        return self._counts.counts()

    def _trim(self, now: float) -> None:
        while self._latencies and self._latencies[0][0] <= now - self.window_s:
            self._latencies.popleft()

    def snapshot(self) -> dict[str, Any]:
        counts = self._counts.counts()
        with self._lock:
            self._trim(self._clock())
            latencies = sorted(ms for _, ms in self._latencies)
        errors = counts["failure"] + counts["timeout"]
        attempts = counts["success"] + errors
        # Hystrix: short-circuited, rejected and bad requests are requests (the volume) but are
        # excluded from the error percentage.
        refused = counts["short_circuited"] + counts["rejected"] + counts["bad_request"]
        return {
            "window_s": self.window_s,
            "counts": counts,
            "request_count": attempts + refused,
            "error_percentage": round(100.0 * errors / attempts, 1) if attempts else 0.0,
            "latency_ms": {f"p{p}": _percentile(latencies, p) for p in (50, 90, 99)},
        }


def _percentile(sorted_values: list[float], p: int) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = math.ceil(p / 100 * len(sorted_values))
    return round(sorted_values[max(rank, 1) - 1], 2)


class _StateLog(pybreaker.CircuitBreakerListener):
    def state_change(self, cb: pybreaker.CircuitBreaker, old: Any, new: Any) -> None:
        old_name = getattr(old, "name", old)
        log.warning("breaker %s: %s -> %s", cb.name, old_name, new.name, extra={"breaker": cb.name})


@dataclass
class Breaker:
    """A named breaker and its metrics; thresholds follow the live settings."""

    name: str
    cb: pybreaker.CircuitBreaker
    metrics: RollingMetrics

    @classmethod
    def create(cls, name: str, settings: BreakerSettings, client: redis.Redis | None) -> Breaker:
        storage = SharedBreakerStorage(name, client) if client is not None else None
        cb = pybreaker.CircuitBreaker(
            fail_max=settings.fail_max,
            reset_timeout=settings.reset_timeout_s,
            success_threshold=settings.success_threshold,
            state_storage=storage,
            listeners=[_StateLog()],
            name=name,
            throw_new_error_on_trip=False,
        )
        return cls(name=name, cb=cb, metrics=RollingMetrics())

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """pybreaker's ``calling()``: raises ``CircuitBreakerError`` while the circuit is open (an
        open one past its reset timeout lets this call through as the half-open trial), and the
        block's outcome is the verdict: an exception a failure, none a success. Except for a call
        whose caller went away (``CancelledError``): no verdict. pybreaker counts an excluded
        exception as a success, which would reset the failure count, or close a half-open
        circuit, on a call whose answer nobody saw (a BFF view that stopped waiting for it)."""
        cb = self.cb
        with cb._lock:  # as pybreaker's call(): the state's admission under the breaker's lock
            state = cb.state
            if state.name == pybreaker.STATE_OPEN:
                opened_at = cb._state_storage.opened_at
                if opened_at and datetime.now(UTC) < opened_at + timedelta(seconds=cb.reset_timeout):
                    raise pybreaker.CircuitBreakerError("Timeout not elapsed yet, circuit breaker still open")
                cb.half_open()
                state = cb.state
        try:
            yield
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            state._handle_error(exc)  # raises it again (opening the circuit at fail_max)
        else:
            state._handle_success()

    def apply(self, settings: BreakerSettings) -> None:
        self.cb.fail_max = settings.fail_max
        self.cb.reset_timeout = settings.reset_timeout_s
        self.cb.success_threshold = settings.success_threshold

    @property
    def state(self) -> str:
        return str(self.cb.current_state)

    @property
    def storage(self) -> SharedBreakerStorage | None:
        storage = self.cb._state_storage
        return storage if isinstance(storage, SharedBreakerStorage) else None

    def retry_after_s(self) -> int:
        """Seconds until a trial call may go through (for ``Retry-After``)."""
        opened = self.cb._state_storage.opened_at
        if self.state != pybreaker.STATE_OPEN or opened is None:
            return 1
        remaining = opened.timestamp() + self.cb.reset_timeout - time.time()
        return max(1, int(remaining + 0.999))

    def snapshot(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, **self.metrics.snapshot()}


class BreakerRegistry:
    """Every breaker of one process, for the dashboard publisher and /ops endpoints."""

    def __init__(self) -> None:
        self._breakers: dict[str, Breaker] = {}
        self.shared = asyncio.Event()  # set once ``share`` has listened and read the shared state

    def add(self, breaker: Breaker) -> Breaker:
        self._breakers[breaker.name] = breaker
        return breaker

    def get(self, name: str) -> Breaker:
        return self._breakers[name]

    def __iter__(self) -> Any:
        return iter(list(self._breakers.values()))

    def apply(self, settings: BreakerSettings) -> None:
        for breaker in self:
            breaker.apply(settings)

    def snapshot(self) -> list[dict[str, Any]]:
        return [breaker.snapshot() for breaker in self]

    async def share(self, redis_url: str, *, resync_s: float = 1.0) -> None:
        """Runs for the app's life (its lifespan starts it): adopt the transitions other replicas
        publish, and re-read every shared breaker's state every ``resync_s`` and after each
        reconnection (a transition published while this process was not listening is not lost)."""
        client = aioredis.Redis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        last_resync = 0.0

        async def resync(_again: bool = False) -> None:
            nonlocal last_resync
            storages = [b.storage for b in self if b.storage is not None]
            for storage in storages:
                if storage.unshared:
                    storage.push()  # synchronous, like every breaker write; only after an outage
            shared = [(storage, storage.version) for storage in storages if not storage.unshared]
            if shared:
                values = await client.mget([key for storage, _ in shared for key in storage.keys()])
                for n, (storage, version) in enumerate(shared):
                    if storage.version == version:  # else it changed while we read: keep its own
                        storage.adopt(values[n * len(_FIELDS) : (n + 1) * len(_FIELDS)])
            last_resync = time.monotonic()
            self.shared.set()

        async def on_message(_channel: str, data: bytes) -> None:
            try:
                event = json.loads(data)
                breaker = self._breakers.get(str(event["name"]))
                state, origin = str(event["state"]), event.get("origin")
                opened_at = float(event["opened_at"]) if event.get("opened_at") else None
            except (ValueError, KeyError, TypeError):
                log.warning("breaker transition ignored: not a transition event")
                return
            storage = breaker.storage if breaker is not None else None
            if storage is not None and origin != storage.origin and state in _STATES and not storage.unshared:
                storage.adopt_transition(state, opened_at)
            if time.monotonic() - last_resync >= resync_s:
                await resync()

        async def on_idle() -> None:
            if time.monotonic() - last_resync >= resync_s:
                await resync()

        try:
            await subscribe_forever(
                "breaker state",
                redis_url,
                [_channel_of(client)],
                on_message=on_message,
                on_subscribed=resync,
                on_idle=on_idle,
                idle_s=resync_s,
            )
        finally:
            await client.aclose()


_STATES = {pybreaker.STATE_CLOSED, pybreaker.STATE_OPEN, pybreaker.STATE_HALF_OPEN}
