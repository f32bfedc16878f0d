"""Mobile: token -> /m/me -> refresh rotates -> reuse of the old refresh token revokes the session,
and the gateway rejects its access token at once (introspection), not at expiry."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from auth_service.settings import Settings as AuthServiceSettings
from chassis.auth import AuthServiceClient
from chassis.state import resource
from msa_cli.devstack import free_port

PROBLEM = "application/problem+json"
Runner = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def token(client: httpx.AsyncClient, user: str = "alice") -> dict[str, Any]:
    response = await client.post("/auth/token", json={"username": user, "password": f"{user}-password"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def until_401(client: httpx.AsyncClient, access_token: str) -> int:
    """The status of /m/me once the revocation announcement had a few ms to arrive (bounded)."""
    status = 0
    for _ in range(50):
        status = (await client.get("/m/me", headers=bearer(access_token))).status_code
        if status == 401:
            break
        await asyncio.sleep(0.02)
    return status


async def test_token_me_refresh_reuse_revokes_at_once(mobile: httpx.AsyncClient) -> None:
    first = await token(mobile)
    assert first["token_type"] == "Bearer"
    me = await mobile.get("/m/me", headers=bearer(first["access_token"]))
    assert me.status_code == 200
    assert me.json()["sub"] == "alice"

    refreshed = await mobile.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (
        await mobile.get("/m/me", headers=bearer(second["access_token"]))
    ).status_code == 200  # cached now

    reuse = await mobile.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.headers["content-type"] == PROBLEM
    assert await until_401(mobile, second["access_token"]) == 401
    assert await until_401(mobile, first["access_token"]) == 401
    assert (
        await mobile.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    ).status_code == 401


async def test_logout_by_refresh_token_or_bearer_ends_the_session(mobile: httpx.AsyncClient) -> None:
    one = await token(mobile)
    assert (await mobile.get("/m/me", headers=bearer(one["access_token"]))).status_code == 200
    assert (
        await mobile.post("/auth/logout", json={"refresh_token": one["refresh_token"]})
    ).status_code == 204
    assert await until_401(mobile, one["access_token"]) == 401
    two = await token(mobile, "bob")
    assert (await mobile.post("/auth/logout", headers=bearer(two["access_token"]))).status_code == 204
    assert await until_401(mobile, two["access_token"]) == 401
    assert (await mobile.post("/auth/logout")).status_code == 400


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_forged_stale_and_revoked_tokens_are_401_at_the_gateway(
    mobile: httpx.AsyncClient, auth_settings: AuthServiceSettings
) -> None:
    good = (await token(mobile))["access_token"]
    key = serialization.load_pem_private_key((auth_settings.data_dir / "signing-key.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    claims = jwt.decode(good, options={"verify_signature": False})
    kid = jwt.get_unverified_header(good)["kid"]
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())

    def signed(changes: dict[str, Any], *, by: rsa.RSAPrivateKey = key, header_kid: str = kid) -> str:
        return jwt.encode({**claims, **changes}, by, algorithm="RS256", headers={"kid": header_kid})

    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body = _b64(json.dumps(claims).encode())
    hs_header = _b64(json.dumps({"alg": "HS256", "kid": kid}).encode())
    hs_sig = _b64(hmac.new(public_pem, f"{hs_header}.{body}".encode(), hashlib.sha256).digest())
    revoked = await token(mobile, "bob")
    await mobile.post("/auth/logout", json={"refresh_token": revoked["refresh_token"]})
    cases = {
        "expired": signed({"exp": now - 120, "iat": now - 1100}),
        "bad signature": signed({}, by=stranger),
        "alg none": f"{_b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}.{body}.",
        "HS256 with the public key": f"{hs_header}.{body}.{hs_sig}",
        "wrong audience": signed({"aud": "another-platform"}),
        "wrong issuer": signed({"iss": "http://evil.example"}),
        "unknown kid": signed({}, by=stranger, header_kid="unknown-kid"),
        "revoked session": revoked["access_token"],
        "a refresh token": (await token(mobile, "admin"))["refresh_token"],
    }
    for reason, bad in cases.items():
        response = await mobile.get("/m/me", headers=bearer(bad))
        assert response.status_code == 401, reason
        assert response.headers["content-type"] == PROBLEM
    assert (await mobile.get("/m/me")).status_code == 401
    assert (await mobile.get("/m/me", headers=bearer(good))).status_code == 200  # the original is fine


async def test_bodies_are_size_limited_and_validated(mobile: httpx.AsyncClient) -> None:
    cases = [
        ("/auth/token", b"{broken", "application/json", 422),
        ("/auth/token", b'{"username": "alice"}', "application/json", 422),
        (
            "/auth/token",
            b'{"username": "alice", "password": "' + b"p" * 70_000 + b'"}',  # over the 64 KiB limit
            "application/json",
            413,
        ),
        ("/auth/refresh", b"[]", "application/json", 422),
        ("/auth/refresh", b"refresh_token=abc", "application/x-www-form-urlencoded", 415),  # JSON only
    ]
    for path, body, content_type, status in cases:
        response = await mobile.post(path, content=body, headers={"content-type": content_type})
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == PROBLEM


async def test_brute_force_is_429(mobile: httpx.AsyncClient) -> None:
    for _ in range(5):
        response = await mobile.post("/auth/token", json={"username": "alice", "password": "guess"})
        assert response.status_code == 401
    locked = await mobile.post("/auth/token", json={"username": "alice", "password": "alice-password"})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0


async def test_auth_service_down_is_a_quick_503(make_gateway: Callable[..., FastAPI], run: Runner) -> None:
    async with run(make_gateway(auth_service_url=f"http://127.0.0.1:{free_port()}")) as client:
        for path, kwargs in (
            ("/auth/token", {"json": {"username": "alice", "password": "alice-password"}}),
            ("/m/me", {"headers": bearer("a.b.c")}),
        ):
            method = client.post if path.startswith("/auth") else client.get
            response = await method(path, **kwargs)  # type: ignore[operator]
            assert response.status_code == 503, path
            assert response.headers["content-type"] == PROBLEM


async def test_cache_is_trusted_only_while_the_revocation_channel_is_subscribed(
    mobile: httpx.AsyncClient, gateway_app: FastAPI, redis_url: str
) -> None:
    """A session deleted silently (no announcement) shows the two regimes of the check cache."""
    client = resource(gateway_app, AuthServiceClient)
    store = aioredis.Redis.from_url(redis_url)

    async def end_silently(access_token: str) -> None:
        sid = jwt.decode(access_token, options={"verify_signature": False})["sid"]
        assert await store.delete(f"auth:session:{sid}") == 1

    try:
        subscribed = await token(mobile)
        assert (await mobile.get("/m/me", headers=bearer(subscribed["access_token"]))).status_code == 200
        await end_silently(subscribed["access_token"])
        # subscribed: the cached answer stands until the cache entry expires (the documented bound)
        assert (await mobile.get("/m/me", headers=bearer(subscribed["access_token"]))).status_code == 200

        client.subscribed = False  # as after the pub/sub connection dropped
        unsubscribed = await token(mobile, "bob")
        assert (await mobile.get("/m/me", headers=bearer(unsubscribed["access_token"]))).status_code == 200
        await end_silently(unsubscribed["access_token"])
        assert (await mobile.get("/m/me", headers=bearer(unsubscribed["access_token"]))).status_code == 401
    finally:
        await store.aclose()
