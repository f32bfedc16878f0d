"""catalog tests: the real app in-process, on each store engine (a SQLite file, a real PostgreSQL), real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from catalog.main import create
from catalog.settings import Settings
from msa_testing.apps import TokenIssuer, asgi_client


def make_settings(database_url: str, redis_url: str) -> Settings:
    return Settings(database_url=database_url, redis_url=redis_url, zipkin_endpoint=None, env="test")


@pytest.fixture
def catalog_store(store_url: Callable[[str], str]) -> str:
    return store_url("catalog")


@pytest.fixture
def catalog_app(catalog_store: str, redis_url: str, issuer: TokenIssuer) -> FastAPI:
    app = create(make_settings(catalog_store, redis_url))
    issuer.install(app)
    return app


@pytest.fixture
async def catalog(catalog_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(catalog_app) as client:
        yield client


@pytest.fixture
def bearer(issuer: TokenIssuer) -> Callable[..., dict[str, str]]:
    """Authorization header for a caller with the given scopes (admin with catalog:write by default)."""

    def make(sub: str = "admin", scope: str = "catalog:read catalog:write") -> dict[str, str]:
        return issuer.headers(sub, scope)

    return make
