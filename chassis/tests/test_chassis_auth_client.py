"""The gateways' AuthServiceClient keeps logins apart from token checks: grants have a breaker of
their own and a concurrency limit, so logins that fail or pile up never cost a token check.

auth-service is stood in for by a real HTTP server whose token endpoint a test makes slow, and
breaker state lives in real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from chassis import BreakerRegistry, Downstream, LiveSettings, ServiceError, ServiceSettings
from chassis.auth import AuthServiceClient, LoginsBusy
from chassis.http import DownstreamUnavailable
from msa_testing.apps import served


class FakeAuthService:
    """Answers introspection at once; the token endpoint waits ``token_delay_s`` first."""

    def __init__(self) -> None:
        self.token_delay_s = 0.0
        self.token_status = 200
        self.in_flight = self.most_in_flight = self.token_calls = 0
        self.app = FastAPI()
        self.app.post("/oauth/token")(self.token)
        self.app.post("/oauth/introspect")(self.introspect)

    async def token(self, request: Request) -> JSONResponse:
        self.token_calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.token_delay_s)
        finally:
            self.in_flight -= 1
        if self.token_status == 429:
            return JSONResponse(
                {"status": 429, "detail": "Too many failed logins from this address: try again later."},
                status_code=429,
                headers={"Retry-After": "42"},
                media_type="application/problem+json",
            )
        return JSONResponse(
            {"access_token": "a", "refresh_token": "r", "expires_in": 900, "scope": "profile"}
        )

    async def introspect(self) -> dict[str, Any]:
        return {"active": True, "sub": "alice", "scope": "profile", "exp": int(time.time()) + 60}


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeAuthService, str]]:
    service = FakeAuthService()
    async with served(service.app) as url:  # type: ignore[arg-type]
        yield service, url


@contextlib.asynccontextmanager
async def client(
    url: str, redis_url: str, **limits: Any
) -> AsyncIterator[tuple[AuthServiceClient, BreakerRegistry]]:
    settings = ServiceSettings.load(
        remote={"breaker.fail_max": 3, "breaker.reset_timeout_s": 30, "http.timeout_s": 0.3},
        service_name="gateway-test",
        redis_url=redis_url,
        zipkin_endpoint=None,
    )
    registry = BreakerRegistry()
    breaker_redis = redis.Redis.from_url(redis_url)
    downstream = Downstream(
        caller="gateway-test",
        callee="auth-service",
        base_url=url,
        live=LiveSettings(settings),
        registry=registry,
        breaker_redis=breaker_redis,
    )
    try:
        yield (
            AuthServiceClient(
                downstream=downstream, client_id="mobile", client_secret="s", cache_s=0, **limits
            ),
            registry,
        )
    finally:
        await downstream.aclose()
        breaker_redis.close()


async def test_logins_timing_out_open_the_login_circuit_only(
    fake: tuple[FakeAuthService, str], redis_url: str
) -> None:
    service, url = fake
    async with client(url, redis_url) as (auth, registry):
        assert sorted(b.name for b in registry) == [
            "gateway-test->auth-service",
            "gateway-test->auth-service/login",
        ]
        service.token_delay_s = 1.0  # longer than the 0.3 s budget
        for _ in range(3):
            with pytest.raises(DownstreamUnavailable) as timed_out:
                await auth.password_grant(username="u", password="p", client_ip="203.0.113.1")
            assert timed_out.value.reason == "timeout"
        with pytest.raises(DownstreamUnavailable) as short:
            await auth.refresh("r")  # refresh grants share the login circuit
        assert short.value.reason == "short_circuited"
        assert registry.get("gateway-test->auth-service/login").state == "open"

        # token checks have their own circuit, still closed and answering
        for _ in range(10):
            assert (await auth.introspect("a-token")).sub == "alice"
        assert registry.get("gateway-test->auth-service").state == "closed"


async def test_grants_beyond_the_concurrency_limit_are_refused_at_once(
    fake: tuple[FakeAuthService, str], redis_url: str
) -> None:
    service, url = fake
    async with client(url, redis_url, login_concurrency=2, login_queue_s=0.05) as (auth, _):
        service.token_delay_s = 0.1  # holds both turns past the 0.05 s queue, well inside the 0.3 s budget

        async def attempt() -> tuple[str, float]:
            started = time.perf_counter()
            try:
                await auth.password_grant(username="u", password="p", client_ip=None)
            except LoginsBusy as busy:
                return f"{busy.status} after {busy.headers['Retry-After']}", time.perf_counter() - started
            return "ok", time.perf_counter() - started

        outcomes = await asyncio.gather(*(attempt() for _ in range(8)))
        assert sorted(o for o, _ in outcomes) == ["429 after 1"] * 6 + ["ok"] * 2
        assert max(took for o, took in outcomes if o != "ok") < 0.15, "shed, not queued"
        assert service.most_in_flight == 2
        # a turn frees up when a grant ends: the next one goes through
        await auth.password_grant(username="u", password="p", client_ip=None)
        assert service.token_calls == 3


async def test_auth_service_limits_are_relayed_with_their_reason_and_retry_after(
    fake: tuple[FakeAuthService, str], redis_url: str
) -> None:
    service, url = fake
    async with client(url, redis_url) as (auth, registry):
        service.token_status = 429
        for _ in range(5):  # refusals are answers, not failures: the login circuit stays closed
            with pytest.raises(ServiceError) as refused:
                await auth.password_grant(username="u", password="p", client_ip="203.0.113.1")
            assert refused.value.status == 429
            assert refused.value.headers["Retry-After"] == "42"
            assert refused.value.detail == "Too many failed logins from this address: try again later."
        assert registry.get("gateway-test->auth-service/login").state == "closed"
