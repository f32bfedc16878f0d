"""The client_credentials grant for service clients (orders -> inventory), how introspection and
chassis.auth treat its session-less tokens, and the chassis token provider that fetches them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import jwt
import pytest
from fastapi import APIRouter, Depends
from pydantic import SecretStr, ValidationError

from auth_service.settings import Settings
from chassis import ServiceSettings, create_app
from chassis.auth import Principal, ServiceTokenProvider, require_scope
from chassis.state import chassis_state
from msa_testing.apps import asgi_client, served
from orders.settings import Settings as OrdersSettings

WEB = ("web", "dev-only-web-secret")
ORDERS = ("orders", "dev-only-orders-secret")


async def service_token(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post("/oauth/token", data={"grant_type": "client_credentials", **form}, auth=ORDERS)


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def test_orders_gets_a_session_less_service_token(auth: httpx.AsyncClient) -> None:
    response = await service_token(auth)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert "refresh_token" not in body  # no session: nothing to refresh
    assert body["scope"] == "inventory:reserve"
    assert body["expires_in"] == 900
    claims = claims_of(body["access_token"])
    assert claims["sub"] == "service:orders"
    assert claims["client_id"] == "orders"
    assert claims["scope"] == "inventory:reserve"
    assert "sid" not in claims
    assert "role" not in claims


async def test_scope_is_narrowed_to_what_the_client_may_have(auth: httpx.AsyncClient) -> None:
    narrowed = await service_token(auth, scope="inventory:reserve inventory:write")
    assert narrowed.json()["scope"] == "inventory:reserve"
    refused = await service_token(auth, scope="inventory:write orders:admin")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"


async def test_each_kind_of_client_keeps_to_its_grants(auth: httpx.AsyncClient) -> None:
    web = await auth.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=WEB)
    assert web.status_code == 400
    assert web.json()["error"] == "unauthorized_client"
    password = {"grant_type": "password", "username": "alice", "password": "alice-password"}
    as_orders = await auth.post("/oauth/token", data=password, auth=ORDERS)
    assert as_orders.status_code == 400
    assert as_orders.json()["error"] == "unauthorized_client"
    wrong = await auth.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("orders", "not-the-secret")
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"


async def test_introspection_treats_service_tokens_as_session_less(auth: httpx.AsyncClient) -> None:
    token = (await service_token(auth)).json()["access_token"]
    answer = (
        await auth.post(
            "/oauth/introspect", data={"token": token, "required_scope": "inventory:reserve"}, auth=WEB
        )
    ).json()
    assert answer["active"] is True
    assert answer["sub"] == "service:orders"
    assert answer["client_id"] == "orders"
    assert answer["authorized"] is True
    assert "sid" not in answer
    # revoking it is accepted (RFC 7009) but there is no session to end: it stays valid until exp
    assert (await auth.post("/oauth/revoke", data={"token": token}, auth=ORDERS)).status_code == 200
    again = (await auth.post("/oauth/introspect", data={"token": token}, auth=WEB)).json()
    assert again["active"] is True


async def test_a_user_token_without_sid_is_never_active(
    auth: httpx.AsyncClient, make_settings: Callable[..., Settings]
) -> None:
    """A token without a session must be a configured service client's own, else inactive:
    dropping ``sid`` from a user token cannot make it unrevocable."""
    from cryptography.hazmat.primitives import serialization

    user = (
        await auth.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "alice", "password": "alice-password"},
            auth=WEB,
        )
    ).json()["access_token"]
    settings = make_settings()
    key = serialization.load_pem_private_key((settings.data_dir / "signing-key.pem").read_bytes(), None)
    kid = jwt.get_unverified_header(user)["kid"]
    for changes in ({}, {"client_id": "orders"}, {"sub": "service:web", "client_id": "web"}):
        claims = {k: v for k, v in claims_of(user).items() if k != "sid"} | changes
        forged = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]
        answer = (await auth.post("/oauth/introspect", data={"token": forged}, auth=WEB)).json()
        assert answer["active"] is False, changes


async def test_domain_services_accept_it_offline_with_its_scope_only(auth_url: str) -> None:
    router = APIRouter()

    @router.post("/reservations")
    async def reserve(
        caller: Annotated[Principal, Depends(require_scope("inventory:reserve"))],
    ) -> dict[str, Any]:
        return {"sub": caller.sub, "sid": caller.sid, "client_id": caller.client_id}

    @router.put("/stock", dependencies=[Depends(require_scope("inventory:write"))])
    async def write() -> dict[str, bool]:
        return {"written": True}

    settings = ServiceSettings(
        service_name="inventory", zipkin_endpoint=None, env="test", auth_service_url=auth_url
    )
    app = create_app(settings, routers=[router], downstreams={"auth-service": auth_url})
    async with httpx.AsyncClient(base_url=auth_url) as auth, asgi_client(app) as inventory:
        token = (await service_token(auth)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        accepted = await inventory.post("/reservations", headers=headers)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {"sub": "service:orders", "sid": None, "client_id": "orders"}
        assert (await inventory.put("/stock", headers=headers)).status_code == 403


async def test_the_provider_fetches_once_and_shares_the_token() -> None:
    calls = 0

    async def fetch() -> tuple[str, float]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)  # concurrent callers arrive while this fetch is running
        return f"token-{calls}", 900.0

    provider = ServiceTokenProvider(fetch=fetch, margin_s=60)
    tokens = await asyncio.gather(*(provider.token() for _ in range(20)))
    assert set(tokens) == {"token-1"}
    assert await provider.token() == "token-1"
    assert calls == 1
    provider.invalidate()
    assert await provider.token() == "token-2"


async def test_the_provider_renews_shortly_before_expiry() -> None:
    issued: list[str] = []

    async def fetch() -> tuple[str, float]:
        issued.append(f"token-{len(issued) + 1}")
        return issued[-1], 0.4

    provider = ServiceTokenProvider(fetch=fetch, margin_s=0.3)  # renewed after max(0.1, 0.2) s
    assert await provider.token() == "token-1"
    assert await provider.token() == "token-1"
    await asyncio.sleep(0.3)
    assert await provider.token() == "token-2"


async def test_the_provider_gets_real_tokens_through_the_downstream(auth_settings: Settings) -> None:
    """orders' own settings and provider against a real auth-service over HTTP."""
    from auth_service.main import create as create_auth
    from chassis.auth import service_token_provider

    async with served(create_auth(auth_settings)) as url:
        settings = OrdersSettings(
            service_name="orders", zipkin_endpoint=None, env="test", auth_service_url=url
        )
        app = create_app(settings, routers=[], downstreams={"auth-service": url})
        async with asgi_client(app):
            provider = service_token_provider(app)
            token = await provider.token()
            assert claims_of(token)["sub"] == "service:orders"
            assert await provider.token() == token  # cached
            assert provider.fetches == 1
            wrong = settings.model_copy(
                update={"auth": settings.auth.model_copy(update={"client_secret": SecretStr("wrong")})}
            )
            chassis_state(app).live.replace(wrong)
            chassis_state(app).resources.pop(ServiceTokenProvider, None)
            with pytest.raises(Exception, match="refused this service's credentials"):
                await service_token_provider(app).token()


def test_production_refuses_the_dev_only_orders_secret(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValidationError, match="ORDERS_CLIENT_SECRET"):
        make_settings(
            env="production",
            jwt_private_key_pem="-----BEGIN PRIVATE KEY-----",
            web_client_secret="a",
            mobile_client_secret="b",
            users=[],
        )
    with pytest.raises(ValidationError, match="AUTH__CLIENT_SECRET"):
        OrdersSettings(env="production", zipkin_endpoint=None)
    assert OrdersSettings(env="production", zipkin_endpoint=None, auth={"client_secret": "s3cret"}).env
