"""The SSE stream over a real HTTP server, and the dashboard riding out a Redis outage."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI

from chassis.state import resource
from msa_cli.devstack import free_port
from ops_dashboard.live.dashboard import Dashboard
from ops_dashboard.main import create
from ops_dashboard.peers.service import HealthPoller
from ops_dashboard.settings import Settings


def settings_for(redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "zipkin_endpoint": None,
        "env": "test",
        "replica_id": "dashboard-test",
        "tick_s": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a free loopback port (ASGITransport cannot stream)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert not task.done(), "uvicorn stopped"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def read_events(lines: AsyncIterator[str], until: Any, limit_s: float = 10.0) -> list[tuple[str, Any]]:
    """(event, data) pairs, and ("comment", text) for comment lines, until ``until(events)``."""
    events: list[tuple[str, Any]] = []
    event, data = "message", ""
    async with asyncio.timeout(limit_s):
        async for line in lines:
            if line.startswith(":"):
                events.append(("comment", line[1:].strip()))
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
            elif line == "" and data:
                events.append((event, json.loads(data)))
                event, data = "message", ""
            if until(events):
                break
    return events


async def test_stream_sends_state_alerts_heartbeats_and_releases_on_disconnect(redis_url: str) -> None:
    app = create(settings_for(redis_url, heartbeat_s=0.5))
    async with serving(app) as base:
        dashboard = resource(app, Dashboard)
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            async with client.stream("GET", "/stream") as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                assert response.headers["cache-control"] == "no-cache"
                lines = response.aiter_lines()
                first = await read_events(lines, lambda ev: len(ev) >= 2)
                assert [name for name, _ in first] == ["state", "alerts"]
                assert first[0][1]["full"] is True
                assert dashboard.hub.subscribers == 1
                publisher = aioredis.Redis.from_url(redis_url)
                await publisher.publish(
                    "msa:alerts", json.dumps({"message": "disk full", "level": "CRITICAL"})
                )
                await publisher.aclose()
                more = await read_events(
                    lines,
                    lambda ev: (
                        any(n == "alert" for n, _ in ev)
                        and any(n == "comment" for n, _ in ev)
                        and sum(n == "state" for n, _ in ev) >= 2
                    ),
                )
        alert = next(data for name, data in more if name == "alert")
        assert alert["message"] == "disk full"
        assert alert["level"] == "CRITICAL"
        assert ("comment", "heartbeat") in more
        assert all(data["full"] is False for name, data in more if name == "state")
        # The client went away: its subscription is released (the generator saw the disconnect).
        for _ in range(100):
            if not dashboard.hub.subscribers:
                break
            await asyncio.sleep(0.05)
        assert dashboard.hub.subscribers == 0


async def test_page_and_assets_are_served_without_any_cdn(redis_url: str) -> None:
    app = create(settings_for(redis_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as client:
            page = await client.get("/")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert "script-src 'self'" in page.headers["content-security-policy"]
            for asset in ("/static/dashboard.js", "/static/dashboard.css"):
                assert asset in page.text
                assert (await client.get(asset)).status_code == 200
            assert "http" not in page.text.replace("http-equiv", "")  # nothing loaded from elsewhere


# ---- Redis outage ---------------------------------------------------------------------------------
class OwnRedis:
    """A redis-server of this test alone, on a fixed port so it can be stopped and started again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(port=self.port, socket_connect_timeout=0.2) as client:
                    client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


async def test_redis_outage_is_shown_then_recovered_from() -> None:
    server = OwnRedis(free_port())
    url = f"redis://127.0.0.1:{server.port}/0"
    app = create(settings_for(url))

    async def state(client: httpx.AsyncClient) -> dict[str, Any]:
        body: dict[str, Any] = (await client.get("/api/state")).json()
        return body

    async def wait_for(client: httpx.AsyncClient, wanted: str) -> dict[str, Any]:
        deadline = time.monotonic() + 15
        while (current := await state(client))["redis"]["status"] != wanted:
            assert time.monotonic() < deadline, f"redis status stayed {current['redis']}, wanted {wanted!r}"
            await asyncio.sleep(0.1)
        return current

    report = {
        "service": "s",
        "replica": "r",
        "breakers": [
            {
                "name": "s->t",
                "state": "closed",
                "window_s": 10,
                "request_count": 10,
                "counts": {"success": 10},
            }
        ],
    }
    server.start()
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as client:
                await wait_for(client, "up")
                server.stop()
                down = await wait_for(client, "down")
                assert down["redis"]["since"]
                assert down["redis"]["error"]
                server.start()
                await wait_for(client, "up")
                # The feed subscribed again: a report published now is shown.
                publisher = aioredis.Redis.from_url(url)
                try:
                    deadline = time.monotonic() + 10
                    while not any(b["name"] == "s->t" for b in (await state(client))["breakers"]):
                        assert time.monotonic() < deadline, (
                            "a report published after the recovery is not shown"
                        )
                        await publisher.publish("msa:metrics", json.dumps(report))
                        await asyncio.sleep(0.2)
                finally:
                    await publisher.aclose()
    finally:
        server.stop()


async def test_services_panel_tells_up_down_and_unreachable(redis_url: str) -> None:
    """Real services answering /health/ready: one healthy, one whose Redis is gone, one not running."""
    healthy = create(settings_for(redis_url))
    broken = create(settings_for(f"redis://127.0.0.1:{free_port()}/0"))  # nothing listens there
    async with serving(healthy) as up_url, serving(broken) as down_url:
        async with httpx.AsyncClient(timeout=3.0) as probes:
            poller = HealthPoller(
                {"up": up_url, "down": down_url, "gone": f"http://127.0.0.1:{free_port()}"}, probes
            )
            await poller.poll_once()
            first = {s["name"]: s for s in poller.snapshot()}
            await poller.poll_once()
            second = {s["name"]: s for s in poller.snapshot()}
    assert [s["name"] for s in poller.snapshot()] == ["down", "gone", "up"]
    assert first["up"]["status"] == "up"
    assert first["up"]["checks"] == {"redis": "up"}
    assert first["down"]["status"] == "down"
    assert first["down"]["error"] == "HTTP 503"
    assert first["down"]["checks"] == {"redis": "down"}
    assert first["gone"]["status"] == "unreachable"
    assert first["gone"]["error"] == "ConnectError"
    # "since" is when the status last changed, not when it was last checked.
    assert second["up"]["since"] == first["up"]["since"]


async def test_services_panel_follows_the_registry() -> None:
    """Without SERVICE_URLS the panel polls whoever the registry names, each round: a new service
    appears, one that left the registry goes, and an unreadable registry keeps the known ones."""
    healthy = create(settings_for_registry := settings_for(f"redis://127.0.0.1:{free_port()}/0"))
    assert settings_for_registry.service_targets == {}
    names: dict[str, str] = {}
    fail = False

    async def discover() -> dict[str, str]:
        if fail:
            raise redis.ConnectionError("gone")
        return dict(names)

    async with serving(healthy) as url, httpx.AsyncClient(timeout=3.0) as probes:
        poller = HealthPoller({}, probes, discover)
        await poller.poll_once()
        assert poller.snapshot() == []
        names["new-service"] = url
        await poller.poll_once()
        assert [(s["name"], s["url"]) for s in poller.snapshot()] == [("new-service", url)]
        fail = True
        await poller.poll_once()
        assert [s["name"] for s in poller.snapshot()] == ["new-service"], "kept while the registry is down"
        fail = False
        names.clear()
        await poller.poll_once()
        assert poller.snapshot() == []
