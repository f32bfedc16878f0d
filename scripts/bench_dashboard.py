"""Benchmark of ops-dashboard under the issue's load: 50 breakers x 10 replicas.

Starts a private redis-server (or uses --redis-url), runs the real dashboard app under uvicorn on a
free loopback port, and publishes what the chassis would: 10 services x 10 replicas, 5 breakers
each, one report per replica per second (SET with TTL + PUBLISH on msa:metrics). Prints the
dashboard's time per tick (prune + aggregate + history + JSON of the state event) and the size of
that event; with --browser also the page's render time per state event in headless Chromium.

    uv run python scripts/bench_dashboard.py [--seconds 15] [--browser]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import redis
import redis.asyncio as aioredis
import uvicorn

from chassis.app import METRICS_CHANNEL, METRICS_KEY_PREFIX, METRICS_TTL_S
from chassis.state import resource
from msa_cli.devstack import free_port
from msa_testing.browser import launched
from ops_dashboard.live.dashboard import Dashboard
from ops_dashboard.main import create
from ops_dashboard.settings import Settings

SERVICES, REPLICAS, BREAKERS_PER_SERVICE = 10, 10, 5


@contextlib.contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (or pass --redis-url)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(redis.ConnectionError), redis.Redis(port=port) as client:
                client.ping()
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def report(service: int, replica: int, rng: random.Random) -> str:
    breakers = []
    for b in range(BREAKERS_PER_SERVICE):
        success, failure, timeout = rng.randint(0, 3000), rng.randint(0, 200), rng.randint(0, 50)
        short, bad_request = rng.randint(0, 100), rng.randint(0, 30)
        breakers.append(
            {
                "name": f"svc-{service}->dep-{b}",
                "state": "open" if rng.random() < 0.05 else "closed",
                "window_s": 10,
                "counts": {
                    "success": success,
                    "bad_request": bad_request,
                    "failure": failure,
                    "timeout": timeout,
                    "short_circuited": short,
                    "fallback_success": short,
                    "fallback_failure": 0,
                },
                "request_count": success + bad_request + failure + timeout + short,
                "error_percentage": round(100 * (failure + timeout) / max(success + failure + timeout, 1), 1),
                "latency_ms": {
                    "p50": rng.uniform(1, 20),
                    "p90": rng.uniform(20, 80),
                    "p99": rng.uniform(80, 300),
                },
            }
        )
    return json.dumps({"service": f"svc-{service}", "replica": f"replica-{replica}", "breakers": breakers})


async def publish_forever(client: aioredis.Redis, service: int, replica: int) -> None:
    rng = random.Random(service * 100 + replica)
    await asyncio.sleep(rng.random())  # replicas are not in step
    while True:
        payload = report(service, replica, rng)
        async with client.pipeline(transaction=False) as pipe:
            pipe.set(f"{METRICS_KEY_PREFIX}:svc-{service}:replica-{replica}", payload, ex=METRICS_TTL_S)
            pipe.publish(METRICS_CHANNEL, payload)
            await pipe.execute()
        await asyncio.sleep(1.0)


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Any, str]]:
    app = create(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            raise SystemExit("the dashboard did not start")
        await asyncio.sleep(0.05)
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"n={len(values)} p50={statistics.median(ordered):.2f} ms p95={p95:.2f} ms "
        f"max={ordered[-1]:.2f} ms mean={statistics.fmean(ordered):.2f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    with redis_server(args.redis_url) as url:
        settings = Settings(
            redis_url=url, zipkin_endpoint=None, env="test", replica_id="bench", log_level="WARNING"
        )
        async with serving(settings) as (app, base):
            dashboard = resource(app, Dashboard)
            publisher = aioredis.Redis.from_url(url)
            tasks = [
                asyncio.create_task(publish_forever(publisher, s, r))
                for s in range(SERVICES)
                for r in range(REPLICAS)
            ]
            browser_stats: list[float] = []
            try:
                await asyncio.sleep(3)  # every replica has reported
                dashboard.tick_times_ms.clear()
                if args.browser:
                    browser_stats = await measure_browser(base, args.seconds)
                else:
                    await asyncio.sleep(args.seconds)
                ticks = list(dashboard.tick_times_ms)
                state = dashboard.state(full=False)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await publisher.aclose()
    breakers = state["breakers"]
    hosts = {b["reporting_hosts"] for b in breakers}
    frame = len(json.dumps(state, separators=(",", ":")))
    print(
        f"load: {SERVICES} services x {REPLICAS} replicas x {BREAKERS_PER_SERVICE} breakers, 1 report/replica/s"
    )
    print(f"dashboard sees {len(breakers)} breakers, reporting hosts per breaker {sorted(hosts)}")
    print(f"tick (prune + aggregate + history + JSON) over {args.seconds}s: {summary(ticks)}")
    print(f"state event size: {frame / 1024:.1f} KiB per tick")
    if args.browser:
        print(f"page render per state event (headless Chromium): {summary(browser_stats)}")


async def measure_browser(base: str, seconds: float) -> list[float]:
    async with launched() as browser:
        page = await browser.new_page(viewport={"width": 1600, "height": 1000})
        await page.goto(base + "/")
        await page.wait_for_selector('#connection[data-status="live"]')
        await asyncio.sleep(2)  # first full render done
        await page.evaluate("window.dashboardStats.renderMs.length = 0")
        await asyncio.sleep(seconds)
        values: list[float] = await page.evaluate("window.dashboardStats.renderMs.slice()")
        return values


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--redis-url", default=None, help="an existing Redis (default: a private redis-server)"
    )
    parser.add_argument("--browser", action="store_true", help="also measure the page in headless Chromium")
    asyncio.run(main(parser.parse_args()))
