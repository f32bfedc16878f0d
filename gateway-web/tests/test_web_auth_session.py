"""Browser sessions: login sets the cookies, /auth/me proves the chain, logout kills the cookie, CSRF."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI

from chassis.auth import AuthServiceClient
from chassis.state import resource
from gateway_web.auth.service import CSRF_PROBLEM
from msa_cli.devstack import free_port

PROBLEM = "application/problem+json"
Runner = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]
ALICE = {"username": "alice", "password": "alice-password"}


async def login(client: httpx.AsyncClient, body: dict[str, str] = ALICE) -> httpx.Response:
    return await client.post("/auth/login", json=body)


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers by cookie name, lower-cased."""
    return {h.split("=", 1)[0]: h.lower() for h in response.headers.get_list("set-cookie")}


async def test_login_sets_httponly_lax_session_cookie_and_a_readable_csrf_cookie(
    web: httpx.AsyncClient,
) -> None:
    response = await login(web)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["sub"] == "alice"
    cookies = set_cookies(response)
    session, csrf = cookies["msa_session"], cookies["msa_csrf"]
    assert "httponly" in session
    assert "samesite=lax" in session
    assert "path=/" in session
    assert "secure" not in session  # not configured here; see the next test
    assert "httponly" not in csrf
    assert f"msa_csrf={body['csrf_token'].lower()}" in csrf
    # the browser never sees a token
    assert "access_token" not in response.text
    assert "refresh_token" not in response.text
    assert web.cookies["msa_session"] not in response.text


async def test_secure_flag_when_configured(make_gateway: Callable[..., FastAPI], run: Runner) -> None:
    async with run(make_gateway(auth={"cookie_secure": True})) as client:
        cookies = set_cookies(await login(client))
        assert "; secure" in cookies["msa_session"]
        assert "; secure" in cookies["msa_csrf"]


async def test_me_then_logout_then_the_same_cookie_is_rejected(web: httpx.AsyncClient) -> None:
    csrf = (await login(web)).json()["csrf_token"]
    me = await web.get("/auth/me")
    assert me.status_code == 200
    assert me.json()["sub"] == "alice"
    assert "orders:write" in me.json()["scope"].split()
    cookie = web.cookies["msa_session"]

    logout = await web.post("/auth/logout", headers={"X-CSRF-Token": csrf})
    assert logout.status_code == 204
    assert web.cookies.get("msa_session") is None  # the browser is told to drop it

    replay = await web.get("/auth/me", headers={"cookie": f"msa_session={cookie}"})
    assert replay.status_code == 401
    assert replay.headers["content-type"] == PROBLEM


async def test_unsafe_methods_need_the_matching_csrf_header(web: httpx.AsyncClient) -> None:
    csrf = (await login(web)).json()["csrf_token"]
    missing = await web.post("/auth/logout")
    assert missing.status_code == 403
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["type"] == CSRF_PROBLEM  # what the storefront tells it from other 403s by
    wrong = await web.post("/auth/logout", headers={"X-CSRF-Token": csrf[:-2] + "xx"})
    assert wrong.status_code == 403
    assert wrong.json()["type"] == CSRF_PROBLEM
    # the session survived both attempts
    assert (await web.get("/auth/me")).status_code == 200
    assert (await web.post("/auth/logout", headers={"X-CSRF-Token": csrf})).status_code == 204


async def test_no_or_unknown_cookie_is_401(web: httpx.AsyncClient) -> None:
    assert (await web.get("/auth/me")).status_code == 401
    forged = await web.get("/auth/me", headers={"cookie": "msa_session=made-up-session-id"})
    assert forged.status_code == 401
    assert forged.headers["content-type"] == PROBLEM


async def test_wrong_password_is_401_problem(web: httpx.AsyncClient) -> None:
    response = await login(web, {"username": "alice", "password": "nope"})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert "msa_session" not in set_cookies(response)


async def test_brute_force_is_429_with_retry_after(web: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await login(web, {"username": "bob", "password": "guess"})).status_code == 401
    locked = await login(web, {"username": "bob", "password": "bob-password"})
    assert locked.status_code == 429
    assert locked.headers["content-type"] == PROBLEM
    assert int(locked.headers["retry-after"]) > 0


async def test_malformed_and_oversize_bodies_are_4xx_problems(web: httpx.AsyncClient) -> None:
    cases = [
        (b"{not json", "application/json", 422),
        (b'{"username": "alice"}', "application/json", 422),
        (b'{"username": "alice", "password": "x"}' + b" " * 70_000, "application/json", 413),  # 64 KiB
        (b"username=alice&password=alice-password", "application/x-www-form-urlencoded", 415),
        (b'{"username": "alice", "password": "alice-password"}', "text/plain", 415),  # no preflight
    ]
    for body, content_type, status in cases:
        response = await web.post("/auth/login", content=body, headers={"content-type": content_type})
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
        assert "alice-password" not in response.text
    # no Content-Type at all (FastAPI alone would read it as JSON): a cross-site form cannot log in
    bare = await web.post("/auth/login", content=b'{"username": "alice", "password": "alice-password"}')
    assert bare.status_code == 415, bare.text


async def test_a_revoked_session_is_rejected_at_once(
    web: httpx.AsyncClient, auth_url: str, redis_url: str
) -> None:
    await login(web)
    assert (await web.get("/auth/me")).status_code == 200  # now cached in the gateway
    # end the session behind the gateway's back: auth-service revokes it (as reuse detection would)
    client = aioredis.Redis.from_url(redis_url)
    try:
        [key] = await client.keys("auth:session:*")
        await client.delete(key)
        await client.publish("msa:auth:revoked", key.decode().rsplit(":", 1)[1])
    finally:
        await client.aclose()
    for _ in range(50):  # the announcement travels through Redis: bounded wait, no sleep-and-hope
        if (await web.get("/auth/me")).status_code == 401:
            break
        await asyncio.sleep(0.02)
    assert (await web.get("/auth/me")).status_code == 401


async def test_tokens_are_refreshed_near_expiry_without_tripping_reuse_detection(
    make_gateway: Callable[..., FastAPI], run: Runner, redis_url: str
) -> None:
    # a refresh margin longer than the token lifetime: every request refreshes
    app = make_gateway(auth={"refresh_margin_s": 3600})
    async with run(app) as client:
        await login(client)
        store = aioredis.Redis.from_url(redis_url)
        try:
            [key] = await store.keys("web:session:*")
            before = await store.get(key)
            results = await asyncio.gather(*(client.get("/auth/me") for _ in range(6)))
            assert [r.status_code for r in results] == [200] * 6
            after = await store.get(key)
        finally:
            await store.aclose()
        assert before != after  # new tokens stored
        assert (await client.get("/auth/me")).status_code == 200  # and the session lives on


async def test_a_refresh_refused_by_a_login_flood_keeps_the_session_while_its_token_is_valid(
    make_gateway: Callable[..., FastAPI], run: Runner
) -> None:
    # every request wants a refresh (margin > token lifetime); the gateway's login slots are all taken
    app = make_gateway(auth={"refresh_margin_s": 3600, "login_concurrency": 1, "login_queue_s": 0.05})
    async with run(app) as client:
        await login(client)
        async with resource(app, AuthServiceClient)._login_slots.slot():  # a flood holds the one slot
            me = await client.get("/auth/me")
        assert me.status_code == 200, me.text  # the access token is still valid: no refresh needed yet
        assert (await client.get("/auth/me")).status_code == 200  # refreshed once the slot is free


async def test_two_gateway_instances_share_a_session(
    make_gateway: Callable[..., FastAPI], run: Runner
) -> None:
    async with run(make_gateway()) as first, run(make_gateway()) as second:
        csrf = (await login(first)).json()["csrf_token"]
        cookie = first.cookies["msa_session"]
        assert (await second.get("/auth/me", headers={"cookie": f"msa_session={cookie}"})).status_code == 200
        second.cookies.set("msa_session", cookie)
        assert (await second.post("/auth/logout", headers={"X-CSRF-Token": csrf})).status_code == 204
        assert (await first.get("/auth/me")).status_code == 401


async def test_redis_down_login_is_503_and_nothing_crashes(make_gateway: Callable[..., FastAPI]) -> None:
    app = make_gateway(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            response = await login(client)
            assert response.status_code == 503
            assert response.headers["content-type"] == PROBLEM
            me = await client.get("/auth/me", headers={"cookie": "msa_session=" + "x" * 43})
            assert me.status_code == 503
            assert (await client.get("/health/live")).status_code == 200


async def test_auth_service_down_is_a_quick_503(make_gateway: Callable[..., FastAPI], run: Runner) -> None:
    async with run(make_gateway(auth_service_url=f"http://127.0.0.1:{free_port()}")) as client:
        response = await login(client)
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        assert "retry-after" in response.headers


async def test_a_second_login_replaces_and_ends_the_old_session(
    web: httpx.AsyncClient, redis_url: str
) -> None:
    await login(web)
    old_cookie = web.cookies["msa_session"]
    await login(web, {"username": "bob", "password": "bob-password"})
    assert web.cookies["msa_session"] != old_cookie  # a fresh id: a planted cookie is worthless
    assert (await web.get("/auth/me")).json()["sub"] == "bob"
    replay = await web.get("/auth/me", headers={"cookie": f"msa_session={old_cookie}"})
    assert replay.status_code == 401
    store = aioredis.Redis.from_url(redis_url)
    try:
        assert len(await store.keys("auth:session:*")) == 1  # alice's auth-service session ended too
    finally:
        await store.aclose()
