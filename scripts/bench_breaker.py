"""What the breaker costs per call, what it asks Redis, and how fast a trip reaches another process.

All on loopback, in one run, against ``msa_testing.servers.flaky_server()`` and a real redis-server
(``msa_testing.infra.start_redis()``):

1. Latency of N sequential GETs (after 50 warm-up calls) three ways, side by side: plain pooled
   httpx; the chassis ``Downstream`` with its breaker state in memory (``breaker_redis=None``);
   and the ``Downstream`` with its state shared (``SharedBreakerStorage`` on a sync Redis client,
   ``BreakerRegistry.share`` running as a task, as an app's lifespan runs it).
2. The Redis commands the shared variant sent during those N healthy calls (``CONFIG RESETSTAT``
   before, ``INFO commandstats`` after, the admin client's own commands left out): none are
   expected but the share task's resync (an ``MGET`` every second).
3. Propagation: two ``msa_testing.breaker_replica`` processes (A and B, on a fresh Redis database
   each round, resync every 60 s so only the transitions channel can tell B); B waits for the
   circuit to open while A makes ``FAIL_MAX`` failing calls; the lag is B's ``seen_at`` minus A's
   ``opened_at``. Repeated ``ROUNDS`` times: min / median / max.

    uv run python scripts/bench_breaker.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack

import httpx
import redis

from chassis import BreakerRegistry, Downstream, LiveSettings, ServiceSettings
from chassis.breakers import channel_for
from msa_testing.breaker_replica import FAIL_MAX, Replica
from msa_testing.infra import RedisServer, start_redis
from msa_testing.servers import FlakyServer, flaky_server

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
ROUNDS = 10  # trips timed in part 3, each on its own Redis database (1..ROUNDS; db 0 is part 2's)
WARMUP = 50


async def _run(
    call: Callable[[], Awaitable[object]], before: Callable[[], object] | None = None
) -> list[float]:
    for _ in range(WARMUP):  # warm up pools
        await call()
    if before is not None:
        before()
    samples = []
    for _ in range(N):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def _row(name: str, samples: list[float], base: float) -> str:
    q = statistics.quantiles(samples, n=100)
    mean = statistics.fmean(samples)
    return f"{name:<36} mean {mean:8.1f} µs   p50 {q[49]:8.1f}   p99 {q[98]:8.1f}   x{mean / base:5.2f}"


def _commands(admin: redis.Redis) -> dict[str, int]:
    """Commands Redis served since ``CONFIG RESETSTAT``, but for ``admin``'s own."""
    stats = admin.info("commandstats")
    counts = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    counts.pop("config|resetstat", None), counts.pop("info", None)
    return counts


def _subscribers(admin: redis.Redis, channel: str) -> int:
    return int(dict(admin.pubsub_numsub(channel)).get(channel.encode(), 0))


def _wait_subscribers(admin: redis.Redis, channel: str, n: int) -> None:
    deadline = time.monotonic() + 10
    while _subscribers(admin, channel) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{channel}: fewer than {n} subscribers after 10 s")
        time.sleep(0.01)


async def _latencies(redis_server: RedisServer, server: FlakyServer) -> None:
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
    try:
        in_memory = await _run(lambda: memory.get_json("/x"))
    finally:
        await memory.aclose()

    admin = redis_server.client()
    breaker_redis = redis.Redis.from_url(redis_server.url)
    registry = BreakerRegistry()
    shared = Downstream(
        caller="bench",
        callee="shared",
        base_url=server.url,
        live=LiveSettings(settings),
        registry=registry,
        breaker_redis=breaker_redis,
    )
    sharing = asyncio.create_task(registry.share(redis_server.url), name="breaker-state")
    try:
        channel = channel_for(0)
        deadline = time.monotonic() + 10
        while _subscribers(admin, channel) < 1:  # the share task listens (as in a running app)
            if sharing.done() or time.monotonic() > deadline:
                raise RuntimeError("the share task did not subscribe")
            await asyncio.sleep(0.01)
        # counted from after the warm-up (the share task's SUBSCRIBE and first resync are long done)
        in_shared = await _run(lambda: shared.get_json("/x"), before=admin.config_resetstat)
        counts = _commands(admin)
    finally:
        sharing.cancel()
        try:
            await sharing
        except asyncio.CancelledError:
            pass
        await shared.aclose()
        breaker_redis.close()
        admin.close()

    base = statistics.fmean(direct)
    print(f"{N} sequential GETs to a local server (loopback), after {WARMUP} warm-up calls")
    print(_row("plain httpx.AsyncClient", direct, base))
    print(_row("Downstream, breaker in memory", in_memory, base))
    print(_row("Downstream, breaker state shared", in_shared, base))
    total = sum(counts.values())
    detail = ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "none"
    print(
        f"Redis commands during the {N} shared-state calls ({sum(in_shared) / 1e6:.2f} s): {total} "
        f"({total / N:.4f} per call): {detail}"
    )


def _trip_lag(redis_server: RedisServer, server: FlakyServer, db: int, admin: redis.Redis) -> float:
    """One round on database ``db`` (fresh: the circuit starts closed): seconds from A opening the
    circuit to B seeing it open."""
    server.mode = "ok"
    with ExitStack() as stack:
        a = Replica(redis_server.url_for(db), server.url, resync_s=60)
        stack.callback(a.stop)
        b = Replica(redis_server.url_for(db), server.url, resync_s=60)
        stack.callback(b.stop)
        a.ready()  # both started before either is waited for
        b.ready()
        for replica in (a, b):  # connections warm, circuit closed
            if replica.ask("call") != {"outcome": "ok", "n": 1}:
                raise RuntimeError("a healthy call failed")
        _wait_subscribers(admin, channel_for(db), 2)  # both listen before A trips

        b.send("wait open 5")
        time.sleep(0.05)  # B is polling its state
        server.mode = "fail"
        outcomes = [a.ask("call")["outcome"] for _ in range(FAIL_MAX)]
        opened = a.ask("state")
        seen = b.read()
        server.mode = "ok"
        if outcomes != ["failure"] * FAIL_MAX or opened["state"] != "open" or seen.get("state") != "open":
            raise RuntimeError(f"round {db}: A {outcomes} -> {opened}, B {seen}")
        return float(seen["seen_at"]) - float(opened["opened_at"])


def _propagation(redis_server: RedisServer, server: FlakyServer) -> None:
    admin = redis_server.client()
    try:
        lags_ms = [_trip_lag(redis_server, server, db, admin) * 1000 for db in range(1, ROUNDS + 1)]
    finally:
        admin.close()
    print(
        f"open on replica A -> seen by replica B (two processes, transitions channel, {ROUNDS} rounds): "
        f"min {min(lags_ms):.2f} ms   median {statistics.median(lags_ms):.2f} ms   max {max(lags_ms):.2f} ms"
    )


def main() -> None:
    redis_server = start_redis()
    try:
        with flaky_server() as server:
            asyncio.run(_latencies(redis_server, server))
            _propagation(redis_server, server)
    finally:
        redis_server.stop()


if __name__ == "__main__":
    main()
