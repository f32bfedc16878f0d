"""gateway-mobile's edge rate limits (chassis.ratelimit) on real Redis and a real auth-service:
per bearer token, per address, and the login group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI

from chassis.state import chassis_state
from msa_testing.apps import GatewayRunner

PROBLEM = "application/problem+json"
RATE_LIMIT: dict[str, Any] = {
    "enabled": True,
    "groups": {
        "login": {"paths": ["/auth/token"], "methods": ["POST"], "per_ip": {"limit": 2, "period_s": 60}},
        "api": {
            "paths": ["/"],
            "per_principal": {"limit": 1, "period_s": 60, "burst": 3},
            "per_ip": {"limit": 100, "period_s": 1, "burst": 100},
        },
    },
}


def from_address(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway-mobile")


async def bearer_of(client: httpx.AsyncClient, user: str) -> dict[str, str]:
    login = await client.post("/auth/token", json={"username": user, "password": f"{user}-password"})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_one_users_burst_is_refused_while_another_user_and_address_go_on(
    make_gateway: Callable[..., FastAPI], run: GatewayRunner
) -> None:
    app = make_gateway(rate_limit=RATE_LIMIT)
    async with run(app) as client, from_address(app, "198.51.100.7") as elsewhere:
        alice, bob = await bearer_of(client, "alice"), await bearer_of(client, "bob")
        answers = [await client.get("/m/me", headers=alice) for _ in range(3)]
        assert [a.status_code for a in answers] == [200] * 3
        assert answers[0].headers["RateLimit"].startswith('"api-principal";r=2;')

        refused = await client.get("/m/me", headers=alice)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM
        assert 55 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["RateLimit-Policy"].startswith('"api-principal";q=1;w=60;msa-burst=3, ')
        assert refused.json()["violated-policies"] == ["api-principal"]

        assert (await client.get("/m/me", headers=bob)).status_code == 200  # same address, other user
        assert (await elsewhere.get("/m/me", headers=bob)).status_code == 200
        assert (await elsewhere.get("/m/me")).status_code == 401  # anonymous: its address's bucket only
        assert chassis_state(app).edge.counts()["rate_limited"] == 1


async def test_logins_are_limited_per_address_before_auth_service_is_asked(
    make_gateway: Callable[..., FastAPI], run: GatewayRunner
) -> None:
    app = make_gateway(rate_limit=RATE_LIMIT)
    wrong = {"username": "alice", "password": "not-her-password"}
    async with run(app), from_address(app, "198.51.100.8") as flood, from_address(app, "203.0.113.8") as user:
        assert [(await flood.post("/auth/token", json=wrong)).status_code for _ in range(2)] == [401, 401]
        refused = await flood.post("/auth/token", json={"username": "alice", "password": "alice-password"})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.headers["RateLimit"].startswith('"login-ip";r=0;t=')
        assert refused.json()["violated-policies"] == ["login-ip"]
        await bearer_of(user, "alice")  # another address logs in
