"""Bulkheads, retries within a budget, and deadlines that travel: the chassis client against a real
HTTP server, breaker state in real Redis, and a real app for the inbound side."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, Request

from chassis import (
    BreakerRegistry,
    Downstream,
    DownstreamUnavailable,
    LiveSettings,
    ServiceSettings,
    create_app,
)
from chassis.chaos import inject_faults
from chassis.settings import BulkheadSettings, ChaosSettings
from chassis.state import chassis_state
from msa_testing.downstreams import replica_client
from msa_testing.servers import FlakyServer


def _settings(redis_url: str, **remote: Any) -> ServiceSettings:
    return ServiceSettings.load(
        remote={"breaker.fail_max": 100, "http.timeout_s": 1.0, "retry.backoff_base_s": 0.001, **remote},
        service_name="caller",
        redis_url=redis_url,
        zipkin_endpoint=None,
        env="test",
    )


# ---- bulkhead ----------------------------------------------------------------------------------


async def test_calls_over_the_bulkhead_are_rejected_at_once_and_take_the_fallback(
    server: FlakyServer, redis_url: str
) -> None:
    server.delay_s = 0.4
    client = replica_client(_settings(redis_url, **{"bulkhead.max_concurrent": 2}), server.url)
    slow = [asyncio.create_task(client.get_json("/x")) for _ in range(2)]
    await asyncio.sleep(0.1)  # both in flight
    started = time.perf_counter()
    with pytest.raises(DownstreamUnavailable) as rejected:
        await client.get_json("/x")
    assert rejected.value.reason == "rejected"
    assert time.perf_counter() - started < 0.05, "a full bulkhead refuses at once"
    assert await client.get_json("/x", fallback=lambda error: {"fallback": error.reason}) == {
        "fallback": "rejected"
    }
    assert [(await task)["ok"] for task in slow] == [True, True]
    assert (server.hits, server.most_in_flight) == (2, 2), "rejected calls never reach the callee"
    counts = client.breaker.metrics.counts()
    assert (counts["rejected"], counts["success"], counts["failure"], counts["fallback_success"]) == (
        2,
        2,
        0,
        1,
    )
    assert (client.breaker.state, client.breaker.cb.fail_counter) == ("closed", 0), "no verdict on the callee"
    assert (await client.get_json("/x"))["ok"] is True  # places free again
    await client.aclose()


async def test_a_queued_call_waits_for_a_place_and_the_limit_follows_live_settings(
    server: FlakyServer, redis_url: str
) -> None:
    server.delay_s = 0.2
    settings = _settings(
        redis_url, **{"bulkhead.max_concurrent": 1, "bulkhead.queue": 1, "bulkhead.queue_wait_s": 1.0}
    )
    live = LiveSettings(settings)
    client = Downstream(
        caller="caller",
        callee="callee",
        base_url=server.url,
        live=live,
        registry=BreakerRegistry(),
        breaker_redis=None,
    )
    first = asyncio.create_task(client.get_json("/x"))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(client.get_json("/x"))  # queues behind the first
    await asyncio.sleep(0.05)
    with pytest.raises(DownstreamUnavailable, match="rejected"):  # the queue's one place is taken
        await client.get_json("/x")
    assert (await first)["ok"]
    assert (await second)["ok"]
    assert server.most_in_flight == 1

    live.replace(settings.model_copy(update={"bulkhead": BulkheadSettings(max_concurrent=3)}))
    results = await asyncio.gather(*(client.get_json("/x") for _ in range(3)))
    assert all(result["ok"] for result in results)
    assert server.most_in_flight == 3

    # a callee of its own: bulkhead.callees.<callee> overrides the service-wide value
    override = ServiceSettings.load(
        remote={"bulkhead.max_concurrent": 50, "bulkhead.callees.callee": 1}, env="test", zipkin_endpoint=None
    )
    live.replace(settings.model_copy(update={"bulkhead": override.bulkhead}))
    outcomes = await asyncio.gather(*(client.get_json("/x", fallback=lambda e: e.reason) for _ in range(3)))
    assert [str(outcome) for outcome in outcomes].count("rejected") == 2
    await client.aclose()


# ---- retries ------------------------------------------------------------------------------------


async def test_an_idempotent_call_is_retried_on_503_and_counts_once_for_the_breaker(
    server: FlakyServer, redis_url: str
) -> None:
    client = replica_client(_settings(redis_url), server.url)
    server.next_statuses = [503, 502]
    assert (await client.get_json("/x"))["ok"] is True
    assert server.hits == 3
    counts = client.breaker.metrics.counts()
    assert (counts["success"], counts["failure"], counts["retried"]) == (1, 0, 2)
    assert client.breaker.cb.fail_counter == 0

    # a write with an Idempotency-Key is safe to resend; the same write without one is not
    server.next_statuses = [503]
    response = await client.request("POST", "/orders", json={}, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 200
    assert server.hits == 5
    server.next_statuses = [503]
    with pytest.raises(DownstreamUnavailable, match="failure"):
        await client.request("POST", "/orders", json={})
    assert server.hits == 6
    await client.aclose()


async def test_what_is_not_retried(server: FlakyServer, redis_url: str) -> None:
    client = replica_client(_settings(redis_url, **{"retry.max_attempts": 3}), server.url)
    server.next_statuses = [500]  # the callee's own failure: a retry would most likely fail again
    with pytest.raises(DownstreamUnavailable):
        await client.get_json("/x")
    assert server.hits == 1
    server.next_statuses = [503, 503, 503, 503]  # attempts used up: three, then the verdict
    with pytest.raises(DownstreamUnavailable):
        await client.get_json("/x")
    assert server.hits == 4
    counts = client.breaker.metrics.counts()
    assert (counts["failure"], counts["retried"]) == (2, 2)
    await client.aclose()


async def test_the_retry_budget_caps_extra_load_on_a_failing_callee(
    server: FlakyServer, redis_url: str
) -> None:
    # budget: 20% of the calls of the last 10 s, plus 0.1 retry a second (one in the window)
    settings = _settings(
        redis_url, **{"retry.max_attempts": 3, "retry.budget_ratio": 0.2, "retry.min_per_s": 0.1}
    )
    client = replica_client(settings, server.url)
    server.next_statuses = [503] * 1000
    calls = 50
    for _ in range(calls):
        with pytest.raises(DownstreamUnavailable):
            await client.get_json("/x")
    retried = client.breaker.metrics.counts()["retried"]
    assert server.hits == calls + retried
    # without a budget each call would make three attempts (150); with it, ~20% more than 50
    assert retried <= 0.2 * calls + 1 + 1, retried
    assert retried >= 0.2 * calls - 1, retried
    await client.aclose()


async def test_a_refused_connection_is_retried_but_never_past_the_call_budget(redis_url: str) -> None:
    from msa_cli.devstack import free_port

    settings = _settings(
        redis_url,
        **{
            "retry.max_attempts": 10,
            "retry.backoff_base_s": 0.2,
            "retry.backoff_max_s": 0.2,
            "http.timeout_s": 0.3,
        },
    )
    client = replica_client(settings, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    started = time.perf_counter()
    with pytest.raises(DownstreamUnavailable, match="failure"):
        await client.get_json("/x")
    assert time.perf_counter() - started < 0.35, "no backoff may end past the call's budget"
    assert 1 <= client.breaker.metrics.counts()["retried"] < 9
    await client.aclose()


# ---- deadlines ----------------------------------------------------------------------------------


def _app(settings: ServiceSettings, downstream_url: str, work: list[str]) -> Any:
    router = APIRouter()

    @router.get("/relay")
    async def relay(request: Request) -> Any:
        callee = chassis_state(request.app).downstreams["callee"]
        return await callee.get_json("/x", fallback=lambda error: {"fallback": error.reason})

    @router.get("/slow", dependencies=[Depends(inject_faults)])
    async def slow() -> dict[str, bool]:
        work.append("done")
        return {"done": True}

    return create_app(settings, routers=[router], downstreams={"callee": downstream_url})


async def test_the_remaining_deadline_travels_downstream_and_cuts_the_timeout(
    server: FlakyServer, redis_url: str
) -> None:
    settings = _settings(redis_url, **{"http.timeout_s": 1.0, "deadline.edge_s": 0.8})
    app = _app(settings, server.url, [])
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/relay")).json()["ok"] is True  # no header: the edge's 0.8 s
            assert 700 <= int(server.last_headers["x-deadline-ms"]) <= 800
            assert (await client.get("/relay", headers={"X-Deadline-Ms": "300"})).json()["ok"] is True
            assert 200 <= int(server.last_headers["x-deadline-ms"]) <= 300

            server.delay_s = 1.0  # slower than the caller's deadline: it waits no longer than that
            started = time.perf_counter()
            answer = await client.get("/relay", headers={"X-Deadline-Ms": "200"})
            assert answer.json() == {"fallback": "timeout"}
            assert time.perf_counter() - started < 0.5


async def test_expired_requests_are_dropped_before_the_work(server: FlakyServer, redis_url: str) -> None:
    work: list[str] = []
    settings = _settings(redis_url).model_copy(update={"chaos": ChaosSettings(latency_ms=300)})
    app = _app(settings, server.url, work)
    edge = chassis_state(app).edge
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            expired = await client.get("/slow", headers={"X-Deadline-Ms": "0"})
            assert expired.status_code == 504
            assert expired.headers["content-type"].startswith("application/problem+json")
            assert expired.json()["title"] == "Deadline Exceeded"

            # the caller waits 100 ms; the injected 300 ms delay outlives that: the handler never runs
            late = await client.get("/slow", headers={"X-Deadline-Ms": "100"})
            assert late.status_code == 504
            assert "after the injected delay" in late.json()["detail"]
            assert work == []
            assert edge.counts()["deadline_exceeded"] == 2

            assert (await client.get("/slow", headers={"X-Deadline-Ms": "2000"})).status_code == 200
            assert work == ["done"]
            assert (await client.get("/slow")).status_code == 200  # no deadline at all: no limit
            assert (await client.get("/health/live", headers={"X-Deadline-Ms": "0"})).status_code == 200
            assert edge.counts()["deadline_exceeded"] == 2
    assert server.hits == 0


async def test_a_call_after_the_deadline_is_never_sent(server: FlakyServer, redis_url: str) -> None:
    from chassis import deadline

    client = replica_client(_settings(redis_url), server.url)
    token = deadline._deadline_var.set(deadline._Deadline(time.monotonic() - 0.01))
    try:
        with pytest.raises(DownstreamUnavailable, match="deadline"):
            await client.get_json("/x")
    finally:
        deadline._deadline_var.reset(token)
    assert server.hits == 0
    counts = client.breaker.metrics.counts()
    assert sum(counts.values()) == 0, "no verdict on a callee that was never asked"
    await client.aclose()


async def test_a_waiter_that_leaves_passes_its_turn_on_and_a_raised_limit_lets_the_queue_in() -> None:
    from chassis.bulkhead import Bulkhead

    bulkhead = Bulkhead("callee", BulkheadSettings(max_concurrent=1, queue=3, queue_wait_s=5.0))
    release = asyncio.Event()
    admitted: list[str] = []

    async def call(name: str) -> None:
        async with bulkhead.slot(5.0):
            admitted.append(name)
            await release.wait()

    first = asyncio.create_task(call("first"))
    await asyncio.sleep(0.01)
    leaving, waiting = asyncio.create_task(call("leaving")), asyncio.create_task(call("waiting"))
    await asyncio.sleep(0.01)
    bulkhead._wake_one()  # "leaving" is handed a turn...
    leaving.cancel()  # ...and goes away before it runs
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.wait_for(asyncio.gather(first, waiting), 1.0)  # not after the 5 s wait
    assert admitted == ["first", "waiting"]

    release.clear()
    blocker = asyncio.create_task(call("blocker"))
    await asyncio.sleep(0.01)
    queued = [asyncio.create_task(call(f"q{n}")) for n in range(3)]
    await asyncio.sleep(0.01)
    bulkhead.apply(BulkheadSettings(max_concurrent=4, queue=3, queue_wait_s=5.0))
    await asyncio.sleep(0.01)
    assert bulkhead.in_flight == 4, "raised live: the queue is let in at once"
    release.set()
    await asyncio.gather(blocker, *queued)


async def test_a_gateway_takes_no_deadline_from_its_clients(server: FlakyServer, redis_url: str) -> None:
    from chassis.bff import BffServiceSettings

    settings = BffServiceSettings.load(
        remote={"bff.budget_s": 1.0},
        service_name="edge",
        redis_url=redis_url,
        zipkin_endpoint=None,
        env="test",
    )
    assert (settings.deadline.edge_s, settings.deadline.from_callers) == (1.0, False)
    app = _app(settings, server.url, [])
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            for sent in ("0", "5", "-1", "9" * 400, "1_000"):
                answer = await client.get("/relay", headers={"X-Deadline-Ms": sent})
                assert answer.json()["ok"] is True, sent  # the gateway's own 1 s, whatever was sent
                assert 800 <= int(server.last_headers["x-deadline-ms"]) <= 1000
    assert chassis_state(app).edge.counts()["deadline_exceeded"] == 0


async def test_cleanup_runs_however_late_the_request_is(server: FlakyServer, redis_url: str) -> None:
    from chassis import deadline

    client = replica_client(_settings(redis_url), server.url)
    token = deadline._deadline_var.set(deadline._Deadline(time.monotonic() - 0.01))
    try:
        with pytest.raises(deadline.DeadlineExceeded):
            deadline.check("a store transaction")
        with deadline.suspended():  # e.g. orders releasing what a dropped request reserved
            deadline.check("a store transaction")
            assert (await client.request("POST", "/release")).status_code == 200
        assert deadline.remaining_s() is not None, "the deadline is back after the cleanup"
    finally:
        deadline._deadline_var.reset(token)
    assert server.hits == 1
    await client.aclose()
