"""The logs name the user but never carry a password, token, cookie or CSRF value."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from fastapi import FastAPI

from msa_testing.logs import Collect


async def test_logs_name_the_user_and_hold_no_secret(
    make_gateway: Callable[..., FastAPI],
    run: Callable[[FastAPI], object],
    redis_url: str,
) -> None:
    app = make_gateway(auth={"refresh_margin_s": 3600})  # forces a refresh on /auth/me too
    collect = Collect()
    root = logging.getLogger()
    root.addHandler(collect)  # after create(): configuring logging replaced the root handlers
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        async with run(app) as client:  # type: ignore[attr-defined]
            login = await client.post("/auth/login", json={"username": "alice", "password": "alice-password"})
            await client.post("/auth/login", json={"username": "alice", "password": "wrong-password-123"})
            csrf = login.json()["csrf_token"]
            cookie = client.cookies["msa_session"]
            assert (await client.get("/auth/me")).status_code == 200
            store = aioredis.Redis.from_url(redis_url)
            try:
                [key] = await store.keys("web:session:*")
                session = json.loads(await store.get(key))
            finally:
                await store.aclose()
            await client.post("/auth/logout", headers={"X-CSRF-Token": csrf})
    finally:
        root.removeHandler(collect)
        root.setLevel(level)
    me_lines = [r for r in collect.records if r.getMessage().startswith("GET /auth/me 200")]
    assert me_lines, "the access line of /auth/me is missing"
    assert all(getattr(r, "user", None) == "alice" for r in me_lines)
    text = collect.text()
    for secret in (
        "alice-password",
        "wrong-password-123",
        "dev-only-web-secret",
        cookie,
        csrf,
        session["access_token"],
        session["refresh_token"],
    ):
        assert secret not in text
