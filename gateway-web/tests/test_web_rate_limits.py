"""gateway-web's edge rate limits (chassis.ratelimit) on real Redis and a real auth-service:
per session, per address for anonymous requests, and the login group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from msa_testing.apps import GatewayRunner

PROBLEM = "application/problem+json"
RATE_LIMIT: dict[str, Any] = {
    "enabled": True,
    "groups": {
        "login": {"paths": ["/auth/login"], "methods": ["POST"], "per_ip": {"limit": 3, "period_s": 60}},
        "api": {
            "paths": ["/"],
            "per_principal": {"limit": 1, "period_s": 60, "burst": 2},
            "per_ip": {"limit": 1, "period_s": 60, "burst": 8},
        },
    },
}


def browser(app: FastAPI, ip: str) -> httpx.AsyncClient:
    """A browser of its own (its own cookie jar) at ``ip``."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway-web")


async def log_in(client: httpx.AsyncClient, user: str) -> None:
    login = await client.post("/auth/login", json={"username": user, "password": f"{user}-password"})
    assert login.status_code == 200, login.text


async def test_a_sessions_burst_is_refused_while_another_session_at_the_address_goes_on(
    make_gateway: Callable[..., FastAPI], run: GatewayRunner
) -> None:
    app = make_gateway(rate_limit=RATE_LIMIT)
    office = "198.51.100.20"
    async with run(app), browser(app, office) as alice, browser(app, office) as bob:
        await log_in(alice, "alice")
        await log_in(bob, "bob")
        assert [(await alice.get("/auth/me")).status_code for _ in range(2)] == [200, 200]
        refused = await alice.get("/auth/me")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM
        assert 55 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.json()["violated-policies"] == ["api-principal"]
        # the session, not the address: bob's session there is untouched
        answer = await bob.get("/auth/me")
        assert answer.status_code == 200
        assert answer.headers["RateLimit"].startswith('"api-principal";r=1;')


async def test_anonymous_requests_share_their_addresss_bucket(
    make_gateway: Callable[..., FastAPI], run: GatewayRunner
) -> None:
    app = make_gateway(rate_limit=RATE_LIMIT)
    async with run(app), browser(app, "198.51.100.21") as anonymous, browser(app, "203.0.113.21") as other:
        statuses = [(await anonymous.get("/auth/me")).status_code for _ in range(9)]
        assert statuses == [401] * 8 + [429]
        assert (await anonymous.get("/auth/me")).json()["violated-policies"] == ["api-ip"]
        assert (await other.get("/auth/me")).status_code == 401  # refused by auth, not by the limit
        assert (await anonymous.get("/health/ready")).status_code == 200  # never limited


async def test_logins_are_limited_per_address(
    make_gateway: Callable[..., FastAPI], run: GatewayRunner
) -> None:
    app = make_gateway(rate_limit=RATE_LIMIT)
    async with run(app), browser(app, "198.51.100.22") as flood, browser(app, "203.0.113.22") as user:
        wrong = {"username": "bob", "password": "not-his-password"}
        assert [(await flood.post("/auth/login", json=wrong)).status_code for _ in range(3)] == [401] * 3
        refused = await flood.post("/auth/login", json={"username": "bob", "password": "bob-password"})
        assert refused.status_code == 429
        assert refused.headers["RateLimit"].startswith('"login-ip";r=0;t=')
        await log_in(user, "bob")
