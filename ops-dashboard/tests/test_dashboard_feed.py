"""Helpers for the ops-dashboard tests: a dashboard in-process, and reports in the chassis' shape."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI

from chassis import RollingMetrics
from chassis.app import EDGE_EVENTS, METRICS_CHANNEL, METRICS_KEY_PREFIX, METRICS_TTL_S
from chassis.breakers import RollingCounts
from chassis.state import chassis_state
from ops_dashboard.main import create
from ops_dashboard.settings import Settings

T = TypeVar("T")


def dashboard_settings(redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "zipkin_endpoint": None,
        "env": "test",
        "replica_id": "dashboard-test",
        "logstash_host": None,
        "config_service_url": None,
        "tick_s": 0.1,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_dashboard(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as client:
            yield app, client


def breaker_report(name: str, state: str, **events: int) -> dict[str, Any]:
    """One breaker as the chassis reports it: built by the chassis' own RollingMetrics."""
    metrics = RollingMetrics()
    for event, n in events.items():
        for _ in range(n):
            # Only calls that reached the downstream have a latency (chassis.http).
            metrics.record(event, 20.0 if event in ("success", "bad_request", "failure", "timeout") else None)
    return {"name": name, "state": state, **metrics.snapshot()}


def edge_report(**events: int) -> dict[str, Any]:
    """A replica's ``edge`` as the chassis publishes it: its own RollingCounts of EDGE_EVENTS."""
    counts = RollingCounts(EDGE_EVENTS)
    for event, n in events.items():
        for _ in range(n):
            counts.record(event)
    return {"window_s": counts.window_s, "counts": counts.counts()}


async def publish_report(
    client: aioredis.Redis,
    service: str,
    replica: str,
    breakers: list[dict[str, Any]],
    edge: dict[str, Any] | None = None,
) -> None:
    """What chassis.app._publish_metrics does once a second (no ``edge``: an older chassis)."""
    report = {"service": service, "replica": replica, "breakers": breakers}
    payload = json.dumps(report if edge is None else {**report, "edge": edge})
    async with client.pipeline(transaction=False) as pipe:
        pipe.set(f"{METRICS_KEY_PREFIX}:{service}:{replica}", payload, ex=METRICS_TTL_S)
        pipe.publish(METRICS_CHANNEL, payload)
        await pipe.execute()


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], *, timeout_s: float = 10.0, what: str = ""
) -> T:
    """Poll ``probe`` until ``accept`` holds (bounded); fail with the last value seen."""
    deadline = time.monotonic() + timeout_s
    value = await probe()
    while not accept(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {what}; last value: {value!r}")
        await asyncio.sleep(0.05)
        value = await probe()
    return value


def breaker(state: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((b for b in state["breakers"] if b["name"] == name), None)


def edge(state: dict[str, Any], service: str) -> dict[str, Any] | None:
    return next((e for e in state["edge"] if e["service"] == service), None)


# ---- the tests -----------------------------------------------------------------------------------
async def get_state(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/state")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def test_two_replicas_of_one_breaker_combine(redis_url: str) -> None:
    name = "gateway-web->catalog"
    r1 = breaker_report(name, "closed", success=8, failure=2)
    r2 = breaker_report(name, "open", success=2, failure=4, timeout=2, short_circuited=6)
    other = breaker_report("gateway-web->reviews", "closed", success=30)
    async with running_dashboard(dashboard_settings(redis_url)) as (_, client):
        redis_client = aioredis.Redis.from_url(redis_url)
        await eventually(lambda: get_state(client), lambda s: s["redis"]["status"] == "up", what="subscribed")
        await publish_report(redis_client, "gateway-web", "gw-1", [r1, other])
        await publish_report(redis_client, "gateway-web", "gw-2", [r2])
        state = await eventually(
            lambda: get_state(client),
            lambda s: (b := breaker(s, name)) is not None and b["reporting_hosts"] == 2,
            what="both replicas reported",
        )
        await redis_client.aclose()
    view = breaker(state, name)
    assert view is not None
    assert view["counts"] == {
        "success": 10,
        "bad_request": 0,
        "failure": 6,
        "timeout": 2,
        "short_circuited": 6,
        "rejected": 0,
        "retried": 0,
        "fallback_success": 0,
        "fallback_failure": 0,
    }
    assert state["edge"] == []  # replicas of an older chassis report no edge counts
    # Hystrix: (failure + timeout) / (success + failure + timeout); short-circuits left out.
    assert view["error_percentage"] == round(100 * 8 / 18, 1)
    assert view["request_count"] == 10 + 14
    assert view["rate"] == 2.4  # both windows are 10 s
    assert view["state"] == "mixed"
    assert view["states"] == {"closed": 1, "open": 1}
    assert view["label"] == "1 Open / 1 Closed"
    assert view["service"] == "gateway-web"
    assert view["callee"] == "catalog"
    assert [r["replica"] for r in view["replicas"]] == ["gw-1", "gw-2"]
    assert view["latency_ms"]["p50"] == 20.0
    reviews = breaker(state, "gateway-web->reviews")
    assert reviews is not None
    assert reviews["reporting_hosts"] == 1
    assert reviews["label"] == "Closed"
    assert reviews["rate"] == 3.0


async def test_rejected_retried_bad_requests_and_edge_counts_combine_across_replicas(redis_url: str) -> None:
    name = "gateway-web->catalog"
    r1 = breaker_report(
        name, "closed", success=8, bad_request=2, failure=2, rejected=3, retried=2, fallback_success=3
    )
    r2 = breaker_report(
        name, "closed", success=10, bad_request=3, timeout=2, short_circuited=1, rejected=4, retried=5
    )
    async with running_dashboard(dashboard_settings(redis_url)) as (_, client):
        redis_client = aioredis.Redis.from_url(redis_url)
        await eventually(lambda: get_state(client), lambda s: s["redis"]["status"] == "up", what="subscribed")
        await publish_report(redis_client, "gateway-web", "gw-1", [r1], edge_report(rate_limited=5, shed=1))
        await publish_report(
            redis_client, "gateway-web", "gw-2", [r2], edge_report(rate_limited=2, deadline_exceeded=3)
        )
        # A service with no breakers publishes once it has refused a request; an older replica of
        # another service publishes no edge at all.
        await publish_report(redis_client, "orders", "o-1", [], edge_report(shed=4))
        await publish_report(
            redis_client,
            "gateway-mobile",
            "m-1",
            [breaker_report("gateway-mobile->catalog", "closed", success=1)],
        )
        state = await eventually(
            lambda: get_state(client),
            lambda s: (
                (b := breaker(s, name)) is not None
                and b["reporting_hosts"] == 2
                and edge(s, "orders") is not None
                and breaker(s, "gateway-mobile->catalog") is not None
            ),
            what="every replica reported",
        )
        await redis_client.aclose()
    view = breaker(state, name)
    assert view is not None
    assert view["counts"] == {
        "success": 18,
        "bad_request": 5,
        "failure": 2,
        "timeout": 2,
        "short_circuited": 1,
        "rejected": 7,
        "retried": 7,
        "fallback_success": 3,
        "fallback_failure": 0,
    }
    # Rejected calls and bad requests count as requests (retries do not) but are left out of the
    # error percentage.
    assert view["request_count"] == (10 + 3 + 2) + (12 + 1 + 4 + 3)
    assert view["rate"] == 3.5
    assert view["error_percentage"] == round(100 * 4 / 22, 1)
    assert view["latency_ms"]["p50"] == 20.0
    assert state["edge"] == [
        {
            "service": "gateway-web",
            "window_s": 10,
            "counts": {"rate_limited": 7, "shed": 1, "deadline_exceeded": 3},
            "reporting_hosts": 2,
            "stale_hosts": 0,
            "freshness": 1.0,
        },
        {
            "service": "orders",
            "window_s": 10,
            "counts": {"rate_limited": 0, "shed": 4, "deadline_exceeded": 0},
            "reporting_hosts": 1,
            "stale_hosts": 0,
            "freshness": 1.0,
        },
    ]
    # None of orders; the wall's order: 18.2 % errors before 0 %.
    assert [b["service"] for b in state["breakers"]] == ["gateway-web", "gateway-mobile"]


async def test_a_silent_replica_fades_then_expires(redis_url: str) -> None:
    name = "orders->inventory"
    settings = dashboard_settings(redis_url, stale_after_s=0.6, expire_after_s=1.6)
    async with running_dashboard(settings) as (_, client):
        redis_client = aioredis.Redis.from_url(redis_url)
        await eventually(lambda: get_state(client), lambda s: s["redis"]["status"] == "up", what="subscribed")
        await publish_report(redis_client, "orders", "silent", [breaker_report(name, "closed", failure=5)])
        keep_publishing = True

        async def alive() -> None:
            while keep_publishing:
                await publish_report(
                    redis_client, "orders", "alive", [breaker_report(name, "closed", success=5)]
                )
                await asyncio.sleep(0.2)

        publisher = asyncio.create_task(alive())
        try:
            both = await eventually(
                lambda: get_state(client),
                lambda s: (b := breaker(s, name)) is not None and b["reporting_hosts"] == 2,
                what="two replicas",
            )
            assert breaker(both, name)["error_percentage"] == 50.0  # type: ignore[index]
            # The silent replica stops counting (no frozen numbers) but is still listed as silent.
            faded = await eventually(
                lambda: get_state(client),
                lambda s: (b := breaker(s, name)) is not None and b["stale_hosts"] == 1,
                what="one silent replica",
            )
            view = breaker(faded, name)
            assert view is not None
            assert view["reporting_hosts"] == 1
            assert view["error_percentage"] == 0.0
            assert view["counts"]["failure"] == 0
            assert {r["replica"]: r["stale"] for r in view["replicas"]} == {"alive": False, "silent": True}
            # Then it is gone.
            gone = await eventually(
                lambda: get_state(client),
                lambda s: (b := breaker(s, name)) is not None and len(b["replicas"]) == 1,
                what="silent replica dropped",
            )
            assert breaker(gone, name)["replicas"][0]["replica"] == "alive"  # type: ignore[index]
        finally:
            keep_publishing = False
            await publisher
        # With every replica silent the circle fades (last numbers, freshness < 1), then disappears.
        fading = await eventually(
            lambda: get_state(client),
            lambda s: (b := breaker(s, name)) is not None and 0 < b["freshness"] < 1,
            what="breaker fading",
        )
        assert breaker(fading, name)["counts"]["success"] == 5  # type: ignore[index]
        await eventually(
            lambda: get_state(client), lambda s: breaker(s, name) is None, what="breaker dropped"
        )
        await redis_client.aclose()


async def test_reports_already_in_redis_show_at_start(redis_url: str) -> None:
    """A dashboard (re)started reads the current keys instead of waiting for the next publish."""
    redis_client = aioredis.Redis.from_url(redis_url)
    payload = {
        "service": "gateway-mobile",
        "replica": "m-1",
        "breakers": [breaker_report("gateway-mobile->catalog", "open", failure=3)],
    }
    # Only the key, no publish: the dashboard can learn it from the key alone.
    await redis_client.set(f"{METRICS_KEY_PREFIX}:gateway-mobile:m-1", json.dumps(payload), ex=METRICS_TTL_S)
    await redis_client.aclose()
    async with running_dashboard(dashboard_settings(redis_url)) as (_, client):
        state = await eventually(
            lambda: get_state(client),
            lambda s: breaker(s, "gateway-mobile->catalog") is not None,
            what="bootstrap",
        )
    view = breaker(state, "gateway-mobile->catalog")
    assert view is not None
    assert view["label"] == "Open"
    assert view["error_percentage"] == 100.0


async def test_real_chassis_publisher_feeds_the_dashboard(redis_url: str) -> None:
    """The contract end to end: a chassis app's breaker, published by the chassis, shown here."""
    from chassis import DownstreamUnavailable, ServiceSettings, create_app
    from msa_cli.devstack import free_port

    caller = create_app(
        ServiceSettings(
            service_name="probe-caller",
            replica_id="pc-1",
            redis_url=redis_url,
            zipkin_endpoint=None,
            env="test",
            breaker={"fail_max": 2, "reset_timeout_s": 30},
        ),
        downstreams={"nowhere": f"http://127.0.0.1:{free_port()}"},  # nothing listens
    )
    async with running_dashboard(dashboard_settings(redis_url)) as (_, client):
        async with caller.router.lifespan_context(caller):
            downstream = chassis_state(caller).downstreams["nowhere"]
            for _ in range(4):
                with contextlib.suppress(DownstreamUnavailable):
                    await downstream.request("GET", "/")
            chassis_state(caller).edge.record("shed")  # as the chassis counts a 503 it sheds
            state = await eventually(
                lambda: get_state(client),
                lambda s: (
                    (b := breaker(s, "probe-caller->nowhere")) is not None
                    and b["state"] == "open"
                    and (e := edge(s, "probe-caller")) is not None
                    and e["counts"]["shed"] == 1
                ),
                what="the chassis' report",
            )
    view = breaker(state, "probe-caller->nowhere")
    assert view is not None
    assert view["counts"]["failure"] == 2
    assert view["counts"]["short_circuited"] == 2
    assert view["error_percentage"] == 100.0
    assert view["replicas"][0]["replica"] == "pc-1"


async def test_alerts_from_the_channel_link_to_zipkin(redis_url: str) -> None:
    settings = dashboard_settings(redis_url, zipkin_ui_url="http://zipkin.example:9411/", alerts_keep=2)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    event = {
        "@timestamp": "2026-11-26T06:30:00.000Z",
        "message": "unhandled error on GET /api/products",
        "level": "ERROR",
        "logger_name": "chassis.errors",
        "service": "gateway-web",
        "env": "test",
        "trace_id": trace_id,
        "span_id": "00f067aa0ba902b7",
        "request_id": "r-1",
        "stack_trace": "Traceback (most recent call last):\n  ...\nKeyError: 'items'\n",
    }
    async with running_dashboard(settings) as (_, client):
        redis_client = aioredis.Redis.from_url(redis_url)
        await eventually(lambda: get_state(client), lambda s: s["redis"]["status"] == "up", what="subscribed")
        await redis_client.publish("msa:alerts", json.dumps(event))
        await redis_client.publish("msa:alerts", json.dumps({**event, "trace_id": "javascript:alert(1)"}))
        await redis_client.publish("msa:alerts", "not json at all")
        await redis_client.aclose()

        async def alerts() -> list[dict[str, Any]]:
            body: list[dict[str, Any]] = (await client.get("/api/alerts")).json()
            return body

        kept = await eventually(
            alerts, lambda a: len(a) == 2 and a[0]["message"] == "not json at all", what="alerts"
        )
    # Only the last two are kept, newest first.
    assert kept[0]["level"] == "UNKNOWN"
    assert kept[1]["trace_url"] is None  # a malformed trace id never becomes a link
    assert kept[1]["service"] == "gateway-web"
    assert kept[1]["stack_trace"].endswith("KeyError: 'items'\n")
    assert kept[1]["id"] < kept[0]["id"]


async def test_first_alert_has_trace_link(redis_url: str) -> None:
    settings = dashboard_settings(redis_url, zipkin_ui_url="http://zipkin.example:9411/")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with running_dashboard(settings) as (_, client):
        redis_client = aioredis.Redis.from_url(redis_url)
        await eventually(lambda: get_state(client), lambda s: s["redis"]["status"] == "up", what="subscribed")
        await redis_client.publish(
            "msa:alerts", json.dumps({"message": "boom", "level": "ERROR", "trace_id": trace_id})
        )
        await redis_client.aclose()

        async def alerts() -> list[dict[str, Any]]:
            body: list[dict[str, Any]] = (await client.get("/api/alerts")).json()
            return body

        kept = await eventually(alerts, lambda a: len(a) == 1, what="alert")
    assert kept[0]["trace_url"] == f"http://zipkin.example:9411/zipkin/traces/{trace_id}"
    assert kept[0]["message"] == "boom"
