"""Fixtures and helpers for running our own apps in a test: in-process or on a real socket.

- ``served(app)``: the app on 127.0.0.1 (uvicorn in this loop), yields its base URL.
- ``asgi_client(app)``: the app's lifespan run, an ``httpx.AsyncClient`` over ``ASGITransport``.
- ``issuer`` / ``TokenIssuer``: RS256 access tokens signed the way auth-service signs them, the
  app's verifier given their JWKS (the chassis verification code is the real one).
- ``auth_settings`` / ``auth_url``: a real auth-service on a socket.
- ``gateway_app`` / ``run``: for a gateway's tests; its conftest defines ``make_gateway``
  (``gateway_maker(create, Settings, ...)``), these build and run it.
- ``domain`` / ``gateway``: catalog, inventory, reviews and orders served for real, and a gateway
  wired to them; ``dead_url()`` for a downstream that refuses connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jwt.algorithms import RSAAlgorithm

from auth_service.main import create as create_auth
from auth_service.settings import Settings as AuthServiceSettings
from catalog.main import create as create_catalog
from catalog.settings import Settings as CatalogSettings
from chassis import ServiceSettings
from chassis.auth import AuthServiceClient, AuthSettings, JwtVerifier
from chassis.state import provide, resource
from chassis.testing import running_app
from inventory.main import create as create_inventory
from inventory.settings import Settings as InventorySettings
from msa_cli.devstack import free_port
from orders.main import create as create_orders
from orders.settings import Settings as OrdersSettings
from reviews.main import create as create_reviews
from reviews.settings import Settings as ReviewsSettings

__all__ = [
    "GatewayRunner",
    "TokenIssuer",
    "asgi_client",
    "dead_url",
    "gateway_maker",
    "running_gateway",
    "served",
    "wait_subscribed",
]

GatewayRunner = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@contextlib.asynccontextmanager
async def served(app: FastAPI, **options: Any) -> AsyncIterator[str]:
    """The app on a real socket (uvicorn in this loop), so clients go through HTTP. ``options``:
    more ``uvicorn.Config`` arguments (``**server_options(...)``: the server ``serve()`` runs)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=3,
            **options,
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.02)
    assert server.started, "test server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process with its lifespan run; the client's base URL is ``http://<title>``."""
    async with running_app(app, base_url=f"http://{app.title}") as client:
        yield client


class TokenIssuer:
    """Signs RS256 access tokens the way auth-service does, and serves them to an app's verifier
    as its JWKS (the test stands in for auth-service; the chassis verification code is the real one)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": "test-key", "use": "sig", "alg": "RS256"}]}
        self.settings = AuthSettings()

    def token(self, sub: str, scope: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.settings.issuer, "aud": self.settings.audience, "sub": sub, "scope": scope,
            "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, "client_id": "web",
        }  # fmt: skip
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "test-key"})

    def headers(self, sub: str, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, scope)}"}

    def install(self, app: FastAPI) -> None:
        async def fetch() -> dict[str, Any]:
            return self.jwks

        provide(app, JwtVerifier(fetch_jwks=fetch, settings=self.settings))


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture
def auth_settings(tmp_path: Path, redis_url: str) -> AuthServiceSettings:
    return AuthServiceSettings(
        data_dir=tmp_path / "auth", redis_url=redis_url, zipkin_endpoint=None, env="test"
    )


@pytest.fixture
async def auth_url(auth_settings: AuthServiceSettings) -> AsyncIterator[str]:
    async with served(create_auth(auth_settings)) as url:
        yield url


# --- gateways ---


def gateway_maker(
    create: Callable[[Any], FastAPI], settings_type: type[ServiceSettings], *, auth_url: str, redis_url: str
) -> Callable[..., FastAPI]:
    """``make(**overrides)``: the gateway wired to a real auth-service and Redis; other downstreams
    point at a free port (connection refused) unless overridden."""

    def make(**overrides: Any) -> FastAPI:
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "auth_service_url": auth_url,
            "catalog_url": f"http://127.0.0.1:{free_port()}",
            "zipkin_endpoint": None,
            "env": "test",
        }
        values.update(overrides)
        return create(settings_type(**values))

    return make


async def wait_subscribed(app: FastAPI) -> None:
    for _ in range(100):
        if resource(app, AuthServiceClient).subscribed:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the revocation listener did not subscribe")


@contextlib.asynccontextmanager
async def running_gateway(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway in-process with its lifespan, once its revocation listener is subscribed."""
    async with asgi_client(app) as client:
        await wait_subscribed(app)
        yield client


@pytest.fixture
def gateway_app(make_gateway: Callable[..., FastAPI]) -> FastAPI:
    return make_gateway()


@pytest.fixture
def run() -> GatewayRunner:
    """``async with run(app) as client``: a gateway with its lifespan and revocation listener."""
    return running_gateway


# --- the domain services behind a gateway ---


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused


@pytest.fixture
async def domain(tmp_path: Path, redis_url: str, auth_url: str) -> AsyncIterator[dict[str, str]]:
    """catalog, inventory, reviews and orders served for real; their URLs by name."""
    common: dict[str, Any] = {
        "redis_url": redis_url,
        "zipkin_endpoint": None,
        "env": "test",
        "auth_service_url": auth_url,
    }
    async with contextlib.AsyncExitStack() as stack:
        urls = {
            "catalog": await stack.enter_async_context(
                served(create_catalog(CatalogSettings(data_dir=tmp_path / "catalog", **common)))
            ),
            "inventory": await stack.enter_async_context(
                served(create_inventory(InventorySettings(data_dir=tmp_path / "inventory", **common)))
            ),
            "reviews": await stack.enter_async_context(
                served(create_reviews(ReviewsSettings(data_dir=tmp_path / "reviews", **common)))
            ),
        }
        orders = OrdersSettings(
            data_dir=tmp_path / "orders",
            catalog_url=urls["catalog"],
            inventory_url=urls["inventory"],
            **common,
        )
        urls["orders"] = await stack.enter_async_context(served(create_orders(orders)))
        yield urls


@pytest.fixture
def gateway(make_gateway: Callable[..., FastAPI], domain: dict[str, str]) -> Callable[..., FastAPI]:
    """``gateway(reviews_url=..., bff={"budget_s": 0.5})``: the gateway wired to the domain services."""

    def make(**overrides: Any) -> FastAPI:
        values = {f"{name}_url": url for name, url in domain.items()}
        values.update(overrides)
        return make_gateway(**values)

    return make
