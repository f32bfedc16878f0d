"""What the breaker costs per call, and how much of it blocks the event loop.

Runs N calls against a local HTTP server three ways, side by side in one run:
plain pooled httpx, the chassis Downstream with in-process breaker state, and the chassis
Downstream with breaker state shared through a real (loopback) redis-server. It also times the
synchronous Redis calls the breaker makes on the loop.

    uv run python scripts/bench_breaker.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import httpx
import redis

from chassis import BreakerRegistry, Downstream, LiveSettings, ServiceSettings
from chassis.breakers import RedisBreakerStorage
from msa_testing.infra import start_redis
from msa_testing.servers import flaky_server

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
blocked_s = 0.0


def _timed_storage() -> None:
    """Wrap every Redis-touching storage member to sum the time it holds the loop."""

    def wrap_method(name: str) -> None:
        original = getattr(RedisBreakerStorage, name)

        def timed(self: RedisBreakerStorage, *args: object) -> object:
            global blocked_s
            start = time.perf_counter()
            try:
                return original(self, *args)
            finally:
                blocked_s += time.perf_counter() - start

        setattr(RedisBreakerStorage, name, timed)

    def wrap_property(name: str) -> None:
        prop = getattr(RedisBreakerStorage, name)

        def getter(self: RedisBreakerStorage) -> object:
            global blocked_s
            start = time.perf_counter()
            try:
                return prop.fget(self)
            finally:
                blocked_s += time.perf_counter() - start

        def setter(self: RedisBreakerStorage, value: object) -> None:
            global blocked_s
            start = time.perf_counter()
            try:
                prop.fset(self, value)
            finally:
                blocked_s += time.perf_counter() - start

        setattr(RedisBreakerStorage, name, property(getter, setter if prop.fset else None))

    for method in (
        "increment_counter",
        "reset_counter",
        "increment_success_counter",
        "reset_success_counter",
    ):
        wrap_method(method)
    for prop in ("state", "counter", "success_counter", "opened_at"):
        wrap_property(prop)


async def _run(call: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(50):  # warm up pools
        await call()
    samples = []
    for _ in range(N):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def _row(name: str, samples: list[float], base: float) -> str:
    q = statistics.quantiles(samples, n=100)
    mean = statistics.fmean(samples)
    return f"{name:<34} mean {mean:8.1f} µs   p50 {q[49]:8.1f}   p99 {q[98]:8.1f}   x{mean / base:5.2f}"


async def main() -> None:
    global blocked_s
    redis_server = start_redis()
    try:
        with flaky_server() as server:
            settings = ServiceSettings(service_name="bench", redis_url=redis_server.url, zipkin_endpoint=None)
            async with httpx.AsyncClient(base_url=server.url) as plain:
                direct = await _run(lambda: plain.get("/x"))
            memory = Downstream(
                caller="bench",
                callee="memory",
                base_url=server.url,
                live=LiveSettings(settings),
                registry=BreakerRegistry(),
                breaker_redis=None,
            )
            in_memory = await _run(lambda: memory.get_json("/x"))
            await memory.aclose()
            _timed_storage()
            shared = Downstream(
                caller="bench",
                callee="shared",
                base_url=server.url,
                live=LiveSettings(settings),
                registry=BreakerRegistry(),
                breaker_redis=redis.Redis.from_url(redis_server.url),
            )
            blocked_s = 0.0
            in_redis = await _run(lambda: shared.get_json("/x"))
            blocked_per_call = blocked_s / (N + 50) * 1e6
            await shared.aclose()
    finally:
        redis_server.stop()
    base = statistics.fmean(direct)
    print(f"{N} sequential GETs to a local server (loopback), after 50 warm-up calls")
    print(_row("plain httpx.AsyncClient", direct, base))
    print(_row("Downstream, breaker in memory", in_memory, base))
    print(_row("Downstream, breaker state in Redis", in_redis, base))
    print(
        f"event loop blocked by sync Redis breaker calls: {blocked_per_call:.1f} µs per call "
        f"({blocked_per_call / statistics.fmean(in_redis) * 100:.1f}% of the call)"
    )


if __name__ == "__main__":
    asyncio.run(main())
