"""Named circuit breakers (pybreaker) with state shared across replicas in Redis, and rolling metrics.

Why our own Redis storage rather than pybreaker's ``CircuitRedisStorage``: the same semantics,
but during a Redis outage pybreaker's logs a stack trace per operation and keeps paying the
socket timeout on every call; ours falls back to in-process state for a cool-down (one warning
per outage) and rejoins the shared state when Redis answers again. And a healthy call costs one
round trip instead of two. The calls are synchronous because pybreaker's storage API is: about
0.13 ms per healthy call on loopback, on the event loop (``scripts/bench_breaker.py``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pybreaker
import redis

from chassis.settings import BreakerSettings

__all__ = ["Breaker", "BreakerRegistry", "RedisBreakerStorage", "RollingMetrics"]

log = logging.getLogger(__name__)

KEY_PREFIX = "msa:breaker"
_REDIS_COOLDOWN_S = 5.0


class RedisBreakerStorage(pybreaker.CircuitBreakerStorage):
    """Breaker state in Redis (shared by replicas); local memory while Redis is unreachable."""

    def __init__(self, name: str, client: redis.Redis) -> None:
        super().__init__(name)
        self._redis = client
        self._local = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self._down_until = 0.0
        self._seen_fails: int | None = None  # the shared failure count at the last state read
        self._prefix = f"{KEY_PREFIX}:{name}:"
        self._guard(self._init_keys, None)

    def _init_keys(self) -> None:
        pipe = self._redis.pipeline()
        pipe.setnx(self._prefix + "state", pybreaker.STATE_CLOSED)
        pipe.setnx(self._prefix + "fail_counter", 0)
        pipe.setnx(self._prefix + "success_counter", 0)
        pipe.execute()

    def _guard(self, op: Callable[[], Any], local: Callable[[], Any] | None) -> Any:
        if time.monotonic() < self._down_until:
            return local() if local else None
        try:
            result = op()
        except (redis.RedisError, OSError) as exc:
            log.warning(
                "breaker %s: Redis unreachable (%s); using local state for %.0fs",
                self.name,
                type(exc).__name__,
                _REDIS_COOLDOWN_S,
            )
            self._down_until = time.monotonic() + _REDIS_COOLDOWN_S
            return local() if local else None
        if self._down_until:
            self._down_until = 0.0
            log.info("breaker %s: Redis reachable again; state is shared again", self.name)
        return result

    @property
    def state(self) -> str:
        def read() -> str:
            # One round trip for the state, the failure count and the opening time: pybreaker reads
            # the state before every call and resets the count after every success, and the count
            # read here lets reset_counter skip its write when there is nothing to reset (the common case).
            raw, fails, opened = self._redis.mget(
                self._prefix + "state", self._prefix + "fail_counter", self._prefix + "opened_at"
            )
            if raw is None:  # keys expired or flushed: start closed again
                self._init_keys()
                state, fails, opened = str(pybreaker.STATE_CLOSED), None, None
            else:
                state = raw.decode() if isinstance(raw, bytes) else str(raw)
            self._seen_fails = int(fails or 0)
            # The local fallback starts from the last shared state seen, not from what this process
            # last wrote: a circuit opened locally during an earlier outage and closed in the shared
            # state since must not short-circuit calls when Redis goes away again.
            self._local.state = state
            if opened:
                self._local.opened_at = datetime.fromtimestamp(float(opened), UTC)
            return state

        return str(self._guard(read, lambda: self._local.state))

    @state.setter
    def state(self, state: str) -> None:
        self._local.state = state
        self._guard(lambda: self._redis.set(self._prefix + "state", state), None)

    def increment_counter(self) -> None:
        self._local.increment_counter()
        self._seen_fails = None  # unknown until the next read: the next reset must write
        self._guard(lambda: self._redis.incr(self._prefix + "fail_counter"), None)

    def reset_counter(self) -> None:
        self._local.reset_counter()
        if self._seen_fails == 0:
            # Zero when the call began. A failure another replica counted since then is newer
            # than this success, so leaving it stand is right for consecutive-failure counting.
            return
        self._seen_fails = 0
        self._guard(lambda: self._redis.set(self._prefix + "fail_counter", 0), None)

    def increment_success_counter(self) -> None:
        self._local.increment_success_counter()
        self._guard(lambda: self._redis.incr(self._prefix + "success_counter"), None)

    def reset_success_counter(self) -> None:
        self._local.reset_success_counter()
        self._guard(lambda: self._redis.set(self._prefix + "success_counter", 0), None)

    @property
    def counter(self) -> int:
        return int(
            self._guard(
                lambda: int(self._redis.get(self._prefix + "fail_counter") or 0), lambda: self._local.counter
            )
        )

    @property
    def success_counter(self) -> int:
        return int(
            self._guard(
                lambda: int(self._redis.get(self._prefix + "success_counter") or 0),
                lambda: self._local.success_counter,
            )
        )

    @property
    def opened_at(self) -> datetime | None:
        def read() -> datetime | None:
            raw = self._redis.get(self._prefix + "opened_at")
            return datetime.fromtimestamp(float(raw), UTC) if raw else None

        value: datetime | None = self._guard(read, lambda: self._local.opened_at)
        return value

    @opened_at.setter
    def opened_at(self, now: datetime) -> None:
        self._local.opened_at = now
        self._guard(lambda: self._redis.set(self._prefix + "opened_at", now.timestamp()), None)


class RollingMetrics:
    """Hystrix-style rolling counters: ``window_s`` seconds in one-second buckets, plus latencies."""

    EVENTS = ("success", "failure", "timeout", "short_circuited", "fallback_success", "fallback_failure")

    def __init__(self, window_s: int = 10, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._buckets: deque[tuple[int, dict[str, int]]] = deque()
        self._latencies: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()

    def record(self, event: str, latency_ms: float | None = None) -> None:
        now = self._clock()
        second = int(now)
        with self._lock:
            if not self._buckets or self._buckets[-1][0] != second:
                self._buckets.append((second, dict.fromkeys(self.EVENTS, 0)))
            self._buckets[-1][1][event] += 1
            if latency_ms is not None:
                self._latencies.append((now, latency_ms))
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - self.window_s:
            self._buckets.popleft()
        while self._latencies and self._latencies[0][0] <= now - self.window_s:
            self._latencies.popleft()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            self._trim(self._clock())
            counts = dict.fromkeys(self.EVENTS, 0)
            for _, bucket in self._buckets:
                for event, n in bucket.items():
                    counts[event] += n
            latencies = sorted(ms for _, ms in self._latencies)
        errors = counts["failure"] + counts["timeout"]
        attempts = counts["success"] + errors
        return {
            "window_s": self.window_s,
            "counts": counts,
            # Hystrix: short-circuited calls are excluded from the error percentage.
            "request_count": attempts + counts["short_circuited"],
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
        storage = RedisBreakerStorage(name, client) if client is not None else None
        cb = pybreaker.CircuitBreaker(
            fail_max=settings.fail_max,
            reset_timeout=settings.reset_timeout_s,
            success_threshold=settings.success_threshold,
            state_storage=storage,
            listeners=[_StateLog()],
            name=name,
            throw_new_error_on_trip=False,
            # A caller that went away is no verdict on the downstream.
            exclude=[asyncio.CancelledError],
        )
        return cls(name=name, cb=cb, metrics=RollingMetrics())

    def apply(self, settings: BreakerSettings) -> None:
        self.cb.fail_max = settings.fail_max
        self.cb.reset_timeout = settings.reset_timeout_s
        self.cb.success_threshold = settings.success_threshold

    @property
    def state(self) -> str:
        return str(self.cb.current_state)

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
