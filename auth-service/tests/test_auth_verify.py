"""chassis.auth as domain services use it: JWKS fetched over HTTP from a real auth-service.

Every forged or stale token is refused with 401 problem+json; scopes gate writes with 403.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, Depends, FastAPI

from auth_service.main import create
from auth_service.settings import Settings
from auth_service.signing.keyring import rotate_dev_key
from chassis import ServiceSettings, create_app
from chassis.auth import AuthSettings, CurrentUser, JwtVerifier, Principal, Unauthorized, require_scope
from chassis.state import provide
from msa_testing.apps import served

WEB = ("web", "dev-only-web-secret")


def domain_app(auth_url: str) -> FastAPI:
    router = APIRouter()

    @router.get("/orders")
    async def orders(user: CurrentUser) -> dict[str, Any]:
        return {"sub": user.sub, "sid": user.sid}

    @router.put("/products", dependencies=[Depends(require_scope("catalog:write"))])
    async def write() -> dict[str, bool]:
        return {"written": True}

    @router.get("/relay")
    async def relay(user: Annotated[Principal, Depends(require_scope("profile"))]) -> dict[str, str]:
        return user.auth_header()

    settings = ServiceSettings(
        service_name="orders", zipkin_endpoint=None, env="test", auth_service_url=auth_url
    )
    return create_app(settings, routers=[router], downstreams={"auth-service": auth_url})


@pytest.fixture
async def auth_url(make_settings: Callable[..., Settings]) -> AsyncIterator[str]:
    async with served(create(make_settings())) as url:
        yield url


@pytest.fixture
async def orders(auth_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = domain_app(auth_url)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://orders"
        ) as client:
            yield client


async def login(auth_url: str, user: str = "alice") -> dict[str, str]:
    async with httpx.AsyncClient(base_url=auth_url) as client:
        data = {"grant_type": "password", "username": user, "password": f"{user}-password"}
        body: dict[str, str] = (await client.post("/oauth/token", data=data, auth=WEB)).json()
        return body


def signing_key(settings: Settings) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key((settings.data_dir / "signing-key.pem").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def forge(
    settings: Settings,
    token: str,
    *,
    key: rsa.RSAPrivateKey | None = None,
    kid: str | None = None,
    **changes: Any,
) -> str:
    claims = {**claims_of(token), **changes}
    header_kid = kid or jwt.get_unverified_header(token)["kid"]
    return jwt.encode(claims, key or signing_key(settings), algorithm="RS256", headers={"kid": header_kid})


async def assert_401(client: httpx.AsyncClient, token: str, reason: str) -> None:
    response = await client.get("/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, (reason, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_real_token_passes_and_names_the_user(orders: httpx.AsyncClient, auth_url: str) -> None:
    tokens = await login(auth_url)
    response = await orders.get("/orders", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 200
    assert response.json()["sub"] == "alice"
    relay = await orders.get("/relay", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert relay.json() == {"authorization": f"Bearer {tokens['access_token']}"}


async def test_forged_and_stale_tokens_get_401(
    orders: httpx.AsyncClient, auth_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    token = (await login(auth_url))["access_token"]
    header = jwt.get_unverified_header(token)
    claims = claims_of(token)
    public_pem = (
        signing_key(settings)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    body = b64(json.dumps(claims).encode())
    alg_none = f"{b64(json.dumps({'alg': 'none', 'kid': header['kid']}).encode())}.{body}."
    hs_header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": header["kid"]}).encode())
    import hashlib
    import hmac

    signature = hmac.new(public_pem, f"{hs_header}.{body}".encode(), hashlib.sha256).digest()
    hs256_with_public_key = f"{hs_header}.{body}.{b64(signature)}"
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    cases = {
        "expired": forge(settings, token, exp=now - 120, iat=now - 1100),
        "bad signature": token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB"),
        "signed by another key": forge(settings, token, key=stranger),
        "alg none": alg_none,
        "HS256 with the public key": hs256_with_public_key,
        "wrong audience": forge(settings, token, aud="someone-else"),
        "wrong issuer": forge(settings, token, iss="http://evil.example"),
        "unknown kid": forge(settings, token, key=stranger, kid="no-such-key"),
        "no kid": jwt.encode(claims, signing_key(settings), algorithm="RS256"),
        "missing jti": jwt.encode(
            {k: v for k, v in claims.items() if k != "jti"},
            signing_key(settings),
            algorithm="RS256",
            headers={"kid": header["kid"]},
        ),
        "garbage": "not.a.jwt",
    }
    for reason, bad in cases.items():
        await assert_401(orders, bad, reason)
    missing = await orders.get("/orders")
    assert missing.status_code == 401
    basic = await orders.get("/orders", headers={"Authorization": "Basic YWxpY2U6cHc="})
    assert basic.status_code == 401
    # and the untouched token still passes: the cases above failed for their own reason
    assert (await orders.get("/orders", headers={"Authorization": f"Bearer {token}"})).status_code == 200


async def test_scopes_gate_writes(orders: httpx.AsyncClient, auth_url: str) -> None:
    alice = (await login(auth_url, "alice"))["access_token"]
    admin = (await login(auth_url, "admin"))["access_token"]
    denied = await orders.put("/products", headers={"Authorization": f"Bearer {alice}"})
    assert denied.status_code == 403
    assert denied.json()["missing_scope"] == ["catalog:write"]
    assert "insufficient_scope" in denied.headers["www-authenticate"]
    assert (await orders.put("/products", headers={"Authorization": f"Bearer {admin}"})).status_code == 200


async def test_an_unknown_kid_refetches_the_jwks_after_rotation(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    fetches = 0
    app = create(settings)
    async with served(app) as url:
        async with httpx.AsyncClient(base_url=url) as client:

            async def fetch() -> dict[str, Any]:
                nonlocal fetches
                fetches += 1
                body: dict[str, Any] = (await client.get("/.well-known/jwks.json")).json()
                return body

            verifier = JwtVerifier(fetch_jwks=fetch, settings=AuthSettings(jwks_refetch_min_s=0))
            before = (await login(url))["access_token"]
            assert (await verifier.verify(before)).sub == "alice"
            assert fetches == 1
            assert (await verifier.verify(before)).sub == "alice"
            assert fetches == 1  # cached
            provide(app, rotate_dev_key(settings))  # what a restart with a new key does
            after = (await login(url, "bob"))["access_token"]
            assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
            assert (await verifier.verify(after)).sub == "bob"
            assert fetches == 2
            assert (await verifier.verify(before)).sub == "alice"  # the old key is still published


async def test_unknown_kids_cannot_hammer_auth_service() -> None:
    fetches = 0

    async def fetch() -> dict[str, Any]:
        nonlocal fetches
        fetches += 1
        return {"keys": []}

    verifier = JwtVerifier(fetch_jwks=fetch, settings=AuthSettings(jwks_refetch_min_s=60))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for n in range(5):
        token = jwt.encode({"sub": "x"}, key, algorithm="RS256", headers={"kid": f"random-{n}"})
        with pytest.raises(Unauthorized):
            await verifier.verify(token)
    assert fetches == 1
