"""Signing keys: persisted across restarts, provided in production, rotated with a grace period."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from auth_service.main import create
from auth_service.settings import Settings
from auth_service.signing.keyring import load_keyring, rotate_dev_key

WEB = ("web", "dev-only-web-secret")


def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


async def run(settings: Settings, calls: Callable[[httpx.AsyncClient], object]) -> object:
    app = create(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as client:
            return await calls(client)  # type: ignore[misc]


async def test_a_restart_keeps_the_key_and_the_sessions(make_settings: Callable[..., Settings]) -> None:
    async def first(client: httpx.AsyncClient) -> dict[str, str]:
        data = {"grant_type": "password", "username": "bob", "password": "bob-password"}
        body: dict[str, str] = (await client.post("/oauth/token", data=data, auth=WEB)).json()
        return body

    tokens = await run(make_settings(), first)
    assert isinstance(tokens, dict)

    async def second(client: httpx.AsyncClient) -> tuple[bool, int]:
        answer = await client.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=WEB)
        data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        refreshed = await client.post("/oauth/token", data=data, auth=WEB)
        return answer.json()["active"], refreshed.status_code

    assert await run(make_settings(), second) == (True, 200)
    assert (make_settings().data_dir / "signing-key.pem").stat().st_mode & 0o077 == 0  # private to its owner


def test_production_refuses_to_start_without_a_key(make_settings: Callable[..., Settings]) -> None:
    secrets = {
        "web_client_secret": "s3cret-web",
        "mobile_client_secret": "s3cret-mobile",
        "orders_client_secret": "s3cret-orders",
        "users": [],
    }
    with pytest.raises(ValidationError, match="JWT_PRIVATE_KEY"):
        make_settings(env="production", **secrets)
    with pytest.raises(ValidationError, match="WEB_CLIENT_SECRET"):
        make_settings(env="production", jwt_private_key_pem=pem(), users=[])
    with pytest.raises(ValidationError, match="USERS"):  # the demo users are dev-only too
        make_settings(
            env="production", jwt_private_key_pem=pem(), web_client_secret="a", mobile_client_secret="b"
        )
    assert make_settings(env="production", jwt_private_key_pem=pem(), **secrets).env == "production"


def test_a_provided_key_is_used_and_nothing_is_generated(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_text(pem())
    from_file = load_keyring(make_settings(jwt_private_key_file=key_file))
    from_env = load_keyring(make_settings(jwt_private_key_pem=key_file.read_text()))
    assert from_file.active.kid == from_env.active.kid
    assert not (make_settings().data_dir / "signing-key.pem").exists()


def test_a_rotated_out_key_stays_published_until_its_tokens_expire(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(access_token_ttl_s=60)
    now = time.time()
    old = load_keyring(settings, now=now)
    new = rotate_dev_key(settings, now=now + 1)
    assert new.active.kid != old.active.kid
    published = {key["kid"] for key in new.jwks(now + 2)["keys"]}
    assert published == {old.active.kid, new.active.kid}
    assert new.public_key(old.active.kid, now + 2) is not None
    # after one token lifetime (+ leeway) the old key is gone, also after a restart
    later = now + 1 + 60 + 10 + 1
    assert {key["kid"] for key in new.jwks(later)["keys"]} == {new.active.kid}
    assert {key["kid"] for key in load_keyring(settings, now=later).jwks(later)["keys"]} == {new.active.kid}
    assert load_keyring(settings, now=later).active.kid == new.active.kid


def test_an_operator_swapped_key_keeps_the_previous_one_published(
    make_settings: Callable[..., Settings],
) -> None:
    first, second = pem(), pem()
    now = time.time()
    before = load_keyring(make_settings(jwt_private_key_pem=first), now=now)
    after = load_keyring(make_settings(jwt_private_key_pem=second), now=now + 5)
    assert {key["kid"] for key in after.jwks(now + 6)["keys"]} == {before.active.kid, after.active.kid}
