"""The chassis client's breaker against a real HTTP server that fails or hangs, state in real Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
import redis

from chassis import (
    BreakerRegistry,
    Downstream,
    DownstreamError,
    DownstreamUnavailable,
    LiveSettings,
    ServiceSettings,
)
from msa_testing.downstreams import replica_client
from msa_testing.infra import start_redis
from msa_testing.servers import FlakyServer


def _settings(redis_url: str, **breaker: float) -> ServiceSettings:
    return ServiceSettings.load(
        remote={
            "breaker.fail_max": breaker.get("fail_max", 3),
            "breaker.reset_timeout_s": breaker.get("reset_timeout_s", 0.5),
            "http.timeout_s": breaker.get("timeout_s", 0.3),
        },
        service_name="caller",
        redis_url=redis_url,
        zipkin_endpoint=None,
    )


@contextlib.asynccontextmanager
async def _replica(settings: ServiceSettings, url: str, resync_s: float = 1.0) -> AsyncIterator[Downstream]:
    """A client whose registry shares breaker state as an app's lifespan does (``share``)."""
    registry = BreakerRegistry()
    client = replica_client(settings, url, registry)
    sharing = asyncio.create_task(registry.share(settings.redis_url, resync_s=resync_s))
    try:
        yield client
    finally:
        sharing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sharing
        await client.aclose()


async def _until(what: str, check: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


async def test_opens_short_circuits_half_opens_and_closes(server: FlakyServer, redis_url: str) -> None:
    client = replica_client(_settings(redis_url), server.url)
    assert client.name == "caller->callee"
    assert (await client.get_json("/x"))["ok"] is True

    server.mode = "fail"
    for _ in range(3):  # fail_max = 3 consecutive failures
        with pytest.raises(DownstreamUnavailable) as failed:
            await client.get_json("/x")
        assert failed.value.reason == "failure"
    assert client.breaker.state == "open"

    hits = server.hits
    with pytest.raises(DownstreamUnavailable) as short:
        await client.get_json("/x")
    assert short.value.reason == "short_circuited"
    assert short.value.headers["Retry-After"] == "1"
    assert server.hits == hits, "an open circuit must not touch the network"

    server.mode = "ok"
    await asyncio.sleep(0.6)  # past reset_timeout: the next call is the half-open trial
    assert (await client.get_json("/x"))["ok"] is True
    assert client.breaker.state == "closed"
    assert server.hits == hits + 1

    counts = client.breaker.metrics.snapshot()["counts"]
    assert counts == {
        "success": 2,
        "bad_request": 0,
        "failure": 3,
        "timeout": 0,
        "short_circuited": 1,
        "rejected": 0,
        "retried": 0,  # a 500 is the callee's own verdict: never retried
        "fallback_success": 0,
        "fallback_failure": 0,
    }
    snapshot = client.breaker.metrics.snapshot()
    assert snapshot["request_count"] == 6
    assert snapshot["error_percentage"] == 60.0  # 3 of 5 attempts; short-circuits excluded
    assert snapshot["latency_ms"]["p50"] is not None
    await client.aclose()


async def test_a_hanging_downstream_times_out_within_budget(server: FlakyServer, redis_url: str) -> None:
    client = replica_client(_settings(redis_url, timeout_s=0.2, fail_max=2), server.url)
    server.mode = "hang"
    loop = asyncio.get_running_loop()
    for _ in range(2):
        start = loop.time()
        with pytest.raises(DownstreamUnavailable) as hung:
            await client.get_json("/slow")
        assert hung.value.reason == "timeout"
        assert loop.time() - start < 2.0, "the call must give up at its budget, not at the server's whim"
    assert client.breaker.state == "open"
    assert client.breaker.metrics.snapshot()["counts"]["timeout"] == 2
    await client.aclose()


async def test_a_call_whose_caller_went_away_gives_the_breaker_no_verdict(
    server: FlakyServer, redis_url: str
) -> None:
    """A cancelled call (a BFF view that stopped waiting) is neither a success nor a failure: it
    neither resets the failures counted so far nor closes a half-open circuit."""
    client = replica_client(_settings(redis_url, timeout_s=5.0, fail_max=2, reset_timeout_s=0.3), server.url)

    async def cancelled_call() -> None:
        server.mode = "hang"
        call = asyncio.create_task(client.get_json("/slow"))
        await asyncio.sleep(0.2)  # the request is in the server
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

    server.mode = "fail"
    with pytest.raises(DownstreamUnavailable):
        await client.get_json("/x")  # failure 1 of 2
    await cancelled_call()
    server.mode = "fail"
    with pytest.raises(DownstreamUnavailable):
        await client.get_json("/x")  # failure 2 of 2: the cancelled call did not reset the count
    assert client.breaker.state == "open"

    await asyncio.sleep(0.4)  # past reset_timeout: the next call is the half-open trial
    await cancelled_call()
    assert client.breaker.state == "half-open", "a trial nobody waited for closes nothing"
    server.mode = "ok"
    assert (await client.get_json("/x"))["ok"] is True  # the next trial decides
    assert client.breaker.state == "closed"
    await client.aclose()


async def test_two_replicas_share_state_through_redis(server: FlakyServer, redis_url: str) -> None:
    settings = _settings(redis_url, reset_timeout_s=30)
    async with _replica(settings, server.url) as replica_a, _replica(settings, server.url) as replica_b:
        server.mode = "fail"
        for _ in range(3):
            with pytest.raises(DownstreamUnavailable):
                await replica_a.get_json("/x")
        assert replica_a.breaker.state == "open"
        await _until("replica B to hear of it", lambda: replica_b.breaker.state == "open")

        hits = server.hits
        with pytest.raises(DownstreamUnavailable) as short:
            await replica_b.get_json("/x")
        assert short.value.reason == "short_circuited"
        assert server.hits == hits
        with redis.Redis.from_url(redis_url) as admin:
            keys = admin.keys("msa:breaker:caller->callee:*")
        assert {k.decode().rsplit(":", 1)[1] for k in keys} >= {"state", "fail_counter", "opened_at"}


async def test_a_replica_started_later_starts_from_the_shared_state(
    server: FlakyServer, redis_url: str
) -> None:
    settings = _settings(redis_url, reset_timeout_s=30)
    async with _replica(settings, server.url) as first:
        server.mode = "fail"
        for _ in range(3):
            with pytest.raises(DownstreamUnavailable):
                await first.get_json("/x")
        async with _replica(settings, server.url) as late:
            assert late.breaker.state == "open"


async def test_fallback_answers_and_is_counted(server: FlakyServer, redis_url: str) -> None:
    client = replica_client(_settings(redis_url), server.url)
    server.mode = "fail"
    seen: list[str] = []

    def fallback(error: DownstreamUnavailable) -> dict[str, bool]:
        seen.append(error.reason)
        return {"ok": False}

    assert await client.get_json("/x", fallback=fallback) == {"ok": False}
    assert seen == ["failure"]

    def broken(error: DownstreamUnavailable) -> None:
        raise ValueError("no fallback data either")

    with pytest.raises(ValueError, match="no fallback data"):
        await client.get_json("/x", fallback=broken)
    counts = client.breaker.metrics.snapshot()["counts"]
    assert (counts["failure"], counts["fallback_success"], counts["fallback_failure"]) == (2, 1, 1)
    await client.aclose()


async def test_a_4xx_is_a_bad_request_not_a_failure(server: FlakyServer, redis_url: str) -> None:
    """Hystrix's bad request: the callee refused the request itself. It is relayed, takes no
    fallback, never opens the circuit, and is left out of the error percentage; 429 ("not now")
    is no fault of the request and stays an answer."""
    client = replica_client(_settings(redis_url, fail_max=2), server.url)
    fallbacks: list[str] = []
    server.next_statuses = [404, 422, 404, 429]
    for status in (404, 422, 404, 429):
        with pytest.raises(DownstreamError) as refused:
            await client.get_json("/x", fallback=lambda error: fallbacks.append(error.reason))
        assert refused.value.status == status
    assert (await client.get_json("/x"))["ok"] is True
    assert client.breaker.state == "closed"
    assert fallbacks == []
    snapshot = client.breaker.metrics.snapshot()
    counts = snapshot["counts"]
    assert (counts["bad_request"], counts["failure"], counts["success"]) == (3, 0, 2)
    assert snapshot["request_count"] == 5
    assert snapshot["error_percentage"] == 0.0
    await client.aclose()


async def test_thresholds_follow_live_settings(server: FlakyServer, redis_url: str) -> None:
    settings = _settings(redis_url, fail_max=10)
    live = LiveSettings(settings)
    client = Downstream(
        caller="caller",
        callee="callee",
        base_url=server.url,
        live=live,
        registry=BreakerRegistry(),
        breaker_redis=redis.Redis.from_url(redis_url),
    )
    live.replace(_settings(redis_url, fail_max=1))
    server.mode = "fail"
    with pytest.raises(DownstreamUnavailable):
        await client.get_json("/x")
    assert client.breaker.state == "open", "fail_max from the refreshed settings (1) applies"
    await client.aclose()


async def test_redis_outage_degrades_to_local_state(server: FlakyServer) -> None:
    # Nothing listens on port 9: the breaker keeps working on local state.
    client = replica_client(_settings("redis://127.0.0.1:9/0", fail_max=2), server.url)
    assert (await client.get_json("/x"))["ok"] is True
    server.mode = "fail"
    for _ in range(2):
        with pytest.raises(DownstreamUnavailable):
            await client.get_json("/x")
    assert client.breaker.state == "open"
    await client.aclose()


async def test_a_503_about_a_service_behind_the_callee_is_relayed_not_counted(redis_url: str) -> None:
    """orders answering "inventory is unavailable" is a healthy orders: its breaker stays closed."""
    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/own-failure":
            return httpx.Response(503, json={"title": "Service Unavailable"})
        problem = {
            "title": "Service Unavailable",
            "status": 503,
            "detail": "inventory is unavailable (failure)",
            "downstream": "inventory",
        }
        return httpx.Response(
            503, json=problem, headers={"content-type": "application/problem+json", "retry-after": "4"}
        )

    client = Downstream(
        caller="caller",
        callee="orders",
        base_url="http://orders",
        live=LiveSettings(_settings(redis_url, fail_max=2)),
        registry=BreakerRegistry(),
        breaker_redis=redis.Redis.from_url(redis_url),
        transport=httpx.MockTransport(answer),
    )
    for _ in range(3):
        with pytest.raises(DownstreamError) as relayed:
            await client.json("POST", "/orders")
        assert relayed.value.status == 503
        assert relayed.value.detail == "inventory is unavailable (failure)"
        assert relayed.value.headers["Retry-After"] == "4"
    assert client.breaker.state == "closed"
    for _ in range(2):
        with pytest.raises(DownstreamUnavailable):
            await client.get_json("/own-failure")
    assert client.breaker.state == "open", "a 503 of its own still counts"
    await client.aclose()


async def test_a_healthy_call_sends_redis_nothing(server: FlakyServer, redis_url: str) -> None:
    """pybreaker reads the state before and resets the failure count after every call; the storage
    answers both from memory, and writes only what happened: a failure, then the reset after it."""
    client = replica_client(_settings(redis_url), server.url)
    await client.get_json("/x")
    with redis.Redis.from_url(redis_url) as admin:
        admin.config_resetstat()
        for _ in range(20):
            await client.get_json("/x")
        stats = admin.info("commandstats")
        assert set(stats) <= {"cmdstat_config|resetstat", "cmdstat_info"}, stats

        server.mode = "fail"
        with pytest.raises(DownstreamUnavailable):
            await client.get_json("/x")
        assert admin.get("msa:breaker:caller->callee:fail_counter") == b"1"
        server.mode = "ok"
        await client.get_json("/x")
        assert admin.get("msa:breaker:caller->callee:fail_counter") == b"0", (
            "a success after a failure resets"
        )
    await client.aclose()


async def test_a_circuit_opened_during_an_outage_is_shared_when_redis_is_back(server: FlakyServer) -> None:
    """What happened while Redis was away is newer than what Redis has: it is pushed, not undone by
    the resync. (The containers tier once found the opposite bug: a circuit opened on local state
    in one outage and closed since short-circuited every call when Redis went away again.)"""
    redis_server = start_redis()
    settings = _settings(redis_server.url, fail_max=2, reset_timeout_s=0.5)
    key = "msa:breaker:caller->callee:state"
    try:
        async with _replica(settings, server.url, resync_s=0.2) as client:
            await client.get_json("/x")
            redis_server.stop()  # first outage: failures open the circuit on local state only
            server.mode = "fail"
            for _ in range(2):
                with pytest.raises(DownstreamUnavailable):
                    await client.get_json("/x")
            assert client.breaker.state == "open"

            redis_server = start_redis(redis_server.port)  # back, empty
            with redis_server.client() as admin:
                await _until("the open circuit pushed", lambda: admin.get(key) == b"open", 10.0)
                assert client.breaker.state == "open", "not undone by the resync"
                server.mode = "ok"
                await asyncio.sleep(0.6)  # past reset_timeout: the trial call closes it, everywhere
                assert (await client.get_json("/x"))["ok"] is True
                assert client.breaker.state == "closed"
                assert admin.get(key) == b"closed"

            redis_server.stop()  # second outage: the local state goes on from "closed"
            assert (await client.get_json("/x"))["ok"] is True
            assert client.breaker.state == "closed"
    finally:
        redis_server.stop()
