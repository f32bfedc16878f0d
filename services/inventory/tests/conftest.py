"""inventory tests: the real app in-process, on each store engine (a SQLite file, a real
PostgreSQL), real Redis.

``inventory`` sends orders' service token (scope inventory:reserve) on every request, as orders
does; ``anonymous`` sends none."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from inventory.main import create
from inventory.settings import Settings
from msa_testing.apps import TokenIssuer, asgi_client


@pytest.fixture
def inventory_app(store_url: Callable[[str], str], redis_url: str, issuer: TokenIssuer) -> FastAPI:
    settings = Settings(
        database_url=store_url("inventory"), redis_url=redis_url, zipkin_endpoint=None, env="test"
    )
    app = create(settings)
    issuer.install(app)
    return app


@pytest.fixture
async def inventory(inventory_app: FastAPI, issuer: TokenIssuer) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(inventory_app) as client:
        client.headers.update(issuer.headers("service:orders", "inventory:reserve"))
        yield client


@pytest.fixture
async def anonymous(inventory_app: FastAPI, inventory: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    # the same running app, no second lifespan (it would replace the first one's Redis client)
    transport = httpx.ASGITransport(app=inventory_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=str(inventory.base_url)) as client:
        yield client
