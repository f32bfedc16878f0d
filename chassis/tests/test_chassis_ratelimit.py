"""chassis.ratelimit on a real redis-server: the GCRA arithmetic, several buckets checked and
counted in one script, the middleware's answers and headers, live changes, a Redis outage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import APIRouter, FastAPI
from pydantic import ValidationError

from chassis import PROBLEM_JSON, ServiceSettings, create_app, ratelimit
from chassis.ratelimit import (
    QUOTA_EXCEEDED,
    Quota,
    RateLimitSettings,
    address_bucket,
    check_quotas,
    install_rate_limit,
)
from chassis.state import chassis_state
from msa_testing.infra import RedisServer, start_redis


class Limited(ServiceSettings):
    rate_limit: RateLimitSettings = RateLimitSettings()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own: it is stopped and started again."""
    server = start_redis()
    yield server
    server.stop()


def limits(**groups: dict[str, Any]) -> RateLimitSettings:
    return RateLimitSettings.model_validate({"enabled": True, "groups": groups})


def make_app(redis_url: str, rate_limit: RateLimitSettings) -> FastAPI:
    router = APIRouter()

    @router.get("/things")
    async def things() -> dict[str, str]:
        return {"ok": "yes"}

    @router.post("/auth/login")
    async def login() -> dict[str, str]:
        return {"ok": "in"}

    settings = Limited(
        service_name="rl-test", redis_url=redis_url, zipkin_endpoint=None, env="test", rate_limit=rate_limit
    )
    app = create_app(settings, routers=[router])
    install_rate_limit(app)
    return app


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[None]:
    async with app.router.lifespan_context(app):
        yield


def client_from(app: FastAPI, ip: str) -> httpx.AsyncClient:
    """A client whose requests come from ``ip`` (what uvicorn puts in ``scope["client"]``)."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://rl-test")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the script ---------------------------------------------------------------------------------


async def test_a_burst_then_the_steady_rate_and_a_retry_after_that_says_when(
    redis_client: aioredis.Redis,
) -> None:
    quota = Quota(limit=2, period_s=1, burst=3)  # one request per 500 ms, three at once
    check = [("rl:test:burst", "test", quota)]
    burst = [await check_quotas(redis_client, check) for _ in range(3)]
    assert [v.admitted for v in burst] == [True] * 3
    assert [v.usages[0].remaining for v in burst] == [2, 1, 0]
    refused = await check_quotas(redis_client, check)
    assert not refused.admitted
    assert 0 < refused.usages[0].wait_ms <= 500
    assert refused.retry_after_s == 1  # whole seconds, never 0
    assert refused.headers()["Retry-After"] == "1"
    ttl_ms = await redis_client.pttl("rl:test:burst")
    assert 1_000 < ttl_ms <= 1_500, "the key expires once the bucket is full again"

    await asyncio.sleep(0.6)  # one interval later: room for exactly one more
    assert (await check_quotas(redis_client, check)).admitted
    assert not (await check_quotas(redis_client, check)).admitted

    slow = [("rl:test:slow", "slow", Quota(limit=1, period_s=5))]  # one per 5 s, burst = limit
    assert (await check_quotas(redis_client, slow)).admitted
    again = await check_quotas(redis_client, slow)
    assert not again.admitted
    assert 4_800 <= again.usages[0].wait_ms <= 5_000
    assert again.retry_after_s == 5
    assert again.headers()["RateLimit"] == '"slow";r=0;t=5'
    assert again.headers()["RateLimit-Policy"] == '"slow";q=1;w=5;msa-burst=1'


async def test_a_request_refused_by_one_bucket_spends_none_of_the_others(
    redis_client: aioredis.Redis,
) -> None:
    tight, roomy = Quota(limit=1, period_s=60), Quota(limit=5, period_s=60)
    both = [("rl:test:tight", "tight", tight), ("rl:test:roomy", "roomy", roomy)]
    first = await check_quotas(redis_client, both)
    assert first.admitted
    assert [u.remaining for u in first.usages] == [0, 4]
    roomy_tat = await redis_client.get("rl:test:roomy")

    refused = await check_quotas(redis_client, both)
    assert not refused.admitted
    assert [u.fits for u in refused.usages] == [False, True]
    assert refused.usages[1].remaining == 4
    assert await redis_client.get("rl:test:roomy") == roomy_tat, "the roomy bucket was not counted"
    assert 55 <= refused.retry_after_s <= 60  # the tight bucket's wait, not the roomy one's

    alone = await check_quotas(redis_client, both[1:])
    assert alone.admitted
    assert alone.usages[0].remaining == 3


async def test_requests_at_once_are_counted_exactly(redis_client: aioredis.Redis) -> None:
    check = [("rl:test:crowd", "crowd", Quota(limit=1, period_s=60, burst=10))]
    verdicts = await asyncio.gather(*(check_quotas(redis_client, check) for _ in range(50)))
    assert sum(v.admitted for v in verdicts) == 10  # no read-then-write race between them
    assert sorted(v.usages[0].remaining for v in verdicts if v.admitted) == list(range(10))


# --- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "groups",
    [
        {"api": {"paths": ["/"], "per_ip": {"limit": 0}}},
        {"api": {"paths": ["/"], "per_ip": {"limit": 10, "period_s": 0}}},
        {"api": {"paths": ["/"], "per_ip": {"limit": 10, "burst": -1}}},
        {"api": {"paths": ["api"], "per_ip": {"limit": 10}}},
        {"api": {"paths": [], "per_ip": {"limit": 10}}},
        {"api": {"paths": ["/"]}},
        {"api": {"paths": ["/"], "methods": ["FETCH"], "per_ip": {"limit": 10}}},
        {"API v1": {"paths": ["/"], "per_ip": {"limit": 10}}},
    ],
)
def test_settings_refuse_nonsense(groups: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        limits(**groups)


def test_remote_keys_bind_and_the_most_specific_group_applies() -> None:
    settings = Limited.load(
        remote={
            "rate_limit.enabled": "true",
            "rate_limit.groups.api.paths[0]": "/",
            "rate_limit.groups.api.per-ip.limit": "200",
            "rate_limit.groups.login.paths[0]": "/auth/login",
            "rate_limit.groups.login.methods[0]": "post",
            "rate_limit.groups.login.per_ip.limit": 10,
            "rate_limit.groups.login.per_ip.period_s": 60,
            "rate_limit.groups.auth.paths[0]": "/auth",
            "rate_limit.groups.auth.per_principal.limit": 5,
        },
        zipkin_endpoint=None,
    )
    rate_limit = settings.rate_limit
    assert rate_limit.enabled
    assert rate_limit.groups["login"].methods == ["POST"]
    assert rate_limit.groups["api"].per_ip == Quota(limit=200)

    def group(method: str, path: str) -> str | None:
        found = rate_limit.group_for(method, path)
        return found[0] if found else None

    assert group("POST", "/auth/login") == "login"  # longest prefix
    assert group("GET", "/auth/login") == "auth"  # login names POST only
    assert group("GET", "/auth/me") == "auth"
    assert group("GET", "/authority") == "api"  # prefixes match whole segments
    assert group("GET", "/m/products") == "api"
    assert RateLimitSettings().group_for("GET", "/") is None


def test_an_ipv6_network_is_one_bucket_an_ipv4_mapped_address_is_its_ipv4() -> None:
    assert (
        address_bucket("2001:db8:1:2:aaaa::1")
        == address_bucket("2001:db8:1:2:ffff::9")
        == "2001:db8:1:2::/64"
    )
    assert address_bucket("2001:db8:1:3::1") != address_bucket("2001:db8:1:2::1")
    assert address_bucket("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_bucket("192.0.2.7") == "192.0.2.7"


# --- the middleware -----------------------------------------------------------------------------


API = {
    "paths": ["/"],
    "per_principal": {"limit": 1, "period_s": 60, "burst": 3},
    "per_ip": {"limit": 20, "period_s": 60},
}


async def test_one_users_burst_gets_429_with_headers_other_users_and_addresses_do_not(redis_url: str) -> None:
    app = make_app(redis_url, limits(api=API))
    async with (
        running(app),
        client_from(app, "198.51.100.1") as office,
        client_from(app, "203.0.113.9") as home,
    ):
        admitted = [await office.get("/things", headers=bearer("alice-token")) for _ in range(3)]
        assert [r.status_code for r in admitted] == [200] * 3
        assert admitted[0].headers["RateLimit-Policy"] == (
            '"api-principal";q=1;w=60;msa-burst=3, "api-ip";q=20;w=60;msa-burst=20'
        )
        assert admitted[0].headers["RateLimit"] == '"api-principal";r=2;t=60, "api-ip";r=19;t=3'
        assert admitted[2].headers["RateLimit"].startswith('"api-principal";r=0;t=')

        refused = await office.get("/things", headers=bearer("alice-token"))
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM_JSON
        assert 55 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["RateLimit"].startswith('"api-principal";r=0;t=')
        assert '"api-ip";r=17;' in refused.headers["RateLimit"]  # the refusal spent nothing of it
        problem = refused.json()
        assert problem["status"] == 429
        assert problem["type"] == QUOTA_EXCEEDED
        assert problem["violated-policies"] == ["api-principal"]
        assert problem["trace_id"]
        assert problem["request_id"] == refused.headers["x-request-id"]

        # another user behind the same address, and the same user's neighbour elsewhere
        assert (await office.get("/things", headers=bearer("bob-token"))).status_code == 200
        assert (await home.get("/things")).status_code == 200
        assert chassis_state(app).edge.counts()["rate_limited"] == 1


async def test_anonymous_requests_are_limited_per_address(redis_url: str) -> None:
    app = make_app(
        redis_url, limits(api={"paths": ["/"], "per_ip": {"limit": 1, "period_s": 30, "burst": 2}})
    )
    async with (
        running(app),
        client_from(app, "198.51.100.1") as first,
        client_from(app, "198.51.100.2") as second,
    ):
        assert [(await first.get("/things")).status_code for _ in range(3)] == [200, 200, 429]
        # a credential gives no way around the address's bucket
        assert (await first.get("/things", headers=bearer("made-up"))).status_code == 429
        assert (await second.get("/things")).status_code == 200
        assert chassis_state(app).edge.counts()["rate_limited"] == 2

    v6 = make_app(redis_url, limits(api={"paths": ["/"], "per_ip": {"limit": 1, "period_s": 30}}))
    async with running(v6), client_from(v6, "2001:db8::1") as a, client_from(v6, "2001:db8::2") as b:
        assert (await a.get("/things")).status_code == 200
        assert (await b.get("/things")).status_code == 429  # the same /64


async def test_the_login_group_limits_logins_only_and_exempt_routes_never(redis_url: str) -> None:
    login = {"paths": ["/auth/login"], "methods": ["POST"], "per_ip": {"limit": 1, "period_s": 60}}
    everything = {"paths": ["/"], "per_ip": {"limit": 1, "period_s": 60}}
    app = make_app(redis_url, limits(login=login, api=everything))
    async with running(app), client_from(app, "198.51.100.1") as client:
        assert (await client.post("/auth/login")).status_code == 200
        refused = await client.post("/auth/login")
        assert refused.status_code == 429
        assert refused.json()["violated-policies"] == ["login-ip"]
        assert (await client.get("/things")).status_code == 200  # the api group's own bucket
        assert (await client.get("/things")).status_code == 429
        for path in ("/health/live", "/health/ready", "/ops/telemetry", "/openapi.json", "/docs"):
            for _ in range(3):
                answer = await client.get(path)
                assert answer.status_code == 200, path
                assert "ratelimit" not in answer.headers, path

        document = (await client.get("/openapi.json")).json()
        things = document["paths"]["/things"]["get"]["responses"]["429"]
        assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(things["headers"])
        assert "429" not in document["paths"]["/health/live"]["get"]["responses"]


async def test_a_live_change_of_the_limits_applies_to_the_next_request(redis_url: str) -> None:
    roomy = limits(api={"paths": ["/"], "per_ip": {"limit": 100, "period_s": 1, "burst": 100}})
    app = make_app(redis_url, roomy)
    live = chassis_state(app).live
    settings = live.current
    async with running(app), client_from(app, "198.51.100.1") as client:
        assert [(await client.get("/things")).status_code for _ in range(5)] == [200] * 5

        tight = limits(api={"paths": ["/"], "per_ip": {"limit": 1, "period_s": 60, "burst": 1}})
        live.replace(settings.model_copy(update={"rate_limit": tight}))
        answer = await client.get("/things")
        assert answer.status_code == 429  # the bucket the roomy limit left is over the tight one
        assert answer.headers["RateLimit-Policy"] == '"api-ip";q=1;w=60;msa-burst=1'

        live.replace(settings.model_copy(update={"rate_limit": RateLimitSettings()}))  # off
        answer = await client.get("/things")
        assert answer.status_code == 200
        assert "ratelimit" not in answer.headers


async def test_redis_down_admits_every_request_and_the_limits_come_back_by_themselves(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(own_redis.url, limits(api={"paths": ["/"], "per_ip": {"limit": 1, "period_s": 60}}))
    logging.getLogger().addHandler(caplog.handler)  # after create_app: it replaced the root handlers
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(logging.getLogger().removeHandler, caplog.handler)
        await stack.enter_async_context(running(app))
        client = await stack.enter_async_context(client_from(app, "198.51.100.1"))
        assert (await client.get("/things")).status_code == 200
        assert (await client.get("/things")).status_code == 429

        own_redis.stop()
        answers = [await client.get("/things") for _ in range(20)]
        assert [a.status_code for a in answers] == [200] * 20  # fail open, never a 500
        assert "ratelimit" not in answers[0].headers
        warnings = [r for r in caplog.records if r.name == "chassis.ratelimit"]
        assert len(warnings) == 1, "one warning, not one per request"

        restarted = start_redis(own_redis.port)  # back, empty: the old bucket is gone
        own_redis.process = restarted.process
        statuses: list[int] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and statuses[-2:] != [200, 429]:
            statuses.append((await client.get("/things")).status_code)
            await asyncio.sleep(0.1)
        assert statuses[-2:] == [200, 429], statuses  # counted again, with no restart of the app


async def test_a_slow_redis_delays_no_request_past_the_check_timeout_and_one_request_probes_it(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(own_redis.url, limits(api={"paths": ["/"], "per_ip": {"limit": 1, "period_s": 60}}))
    logging.getLogger().addHandler(caplog.handler)
    admin = aioredis.Redis.from_url(own_redis.url)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(logging.getLogger().removeHandler, caplog.handler)
        stack.push_async_callback(admin.aclose)
        await stack.enter_async_context(running(app))
        client = await stack.enter_async_context(client_from(app, "198.51.100.2"))
        assert (await client.get("/things")).status_code == 200
        assert (await client.get("/things")).status_code == 429

        await admin.client_pause(4000)  # Redis up, but answering no command for 4 s
        began = time.monotonic()
        answers = await asyncio.gather(*(client.get("/things") for _ in range(20)))
        took_s = time.monotonic() - began
        assert [a.status_code for a in answers] == [200] * 20  # admitted: fail open
        # none waited for the pause to end (the warning below says what ended the wait: the check's
        # own 0.5 s, not the client's 1 s socket timeout, which raises redis' TimeoutError)
        assert took_s < 3.0, took_s
        later = [(await client.get("/things")).status_code for _ in range(10)]
        assert later == [200] * 10  # within the second after: not asked, not waited for
        warnings = [r for r in caplog.records if r.name == "chassis.ratelimit"]
        assert len(warnings) == 1
        assert "slower than 0.5 s" in warnings[0].getMessage()

        await admin.client_unpause()
        statuses: list[int] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and statuses[-1:] != [429]:
            statuses.append((await client.get("/things")).status_code)
            await asyncio.sleep(0.2)
        assert statuses[-1:] == [429], statuses  # limited again once Redis answers


async def test_a_burst_that_stalls_the_gateways_own_loop_is_still_limited(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check's timeout runs on the gateway's event loop, which the burst itself keeps busy
    (parsing, hashing, answering): a stall of our own while Redis answers at once is not a slow
    Redis, and lets none of the burst through. (With a 0.1 s timeout, every check timed out.)"""
    app = make_app(redis_url, limits(api={"paths": ["/"], "per_principal": {"limit": 5, "period_s": 60}}))
    started = 0

    async def check_then_stall(client: aioredis.Redis, checks: Any) -> Any:
        nonlocal started
        started += 1
        if started == 30:  # every check of the burst on its way to Redis: the loop stalls 0.3 s
            asyncio.get_running_loop().call_soon(time.sleep, 0.3)
        return await check_quotas(client, checks)

    monkeypatch.setattr(ratelimit, "check_quotas", check_then_stall)
    async with running(app), client_from(app, "198.51.100.3") as client:
        burst = await asyncio.gather(
            *(client.get("/things", headers=bearer("carol-token")) for _ in range(30))
        )
    assert started == 30
    statuses = [answer.status_code for answer in burst]
    assert statuses.count(200) == 5, statuses
    assert statuses.count(429) == 25, statuses
