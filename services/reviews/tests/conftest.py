"""reviews tests: the real app in-process, on each store engine (a SQLite file, a real PostgreSQL), real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from msa_testing.apps import TokenIssuer, asgi_client
from reviews.main import create
from reviews.settings import Settings


@pytest.fixture
def reviews_store(store_url: Callable[[str], str]) -> str:
    return store_url("reviews")


@pytest.fixture
def reviews_app(reviews_store: str, redis_url: str, issuer: TokenIssuer) -> FastAPI:
    app = create(Settings(database_url=reviews_store, redis_url=redis_url, zipkin_endpoint=None, env="test"))
    issuer.install(app)
    return app


@pytest.fixture
async def reviews(reviews_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(reviews_app) as client:
        yield client


@pytest.fixture
def user_headers(issuer: TokenIssuer) -> Callable[[str], dict[str, str]]:
    def make(sub: str) -> dict[str, str]:
        return issuer.headers(sub, "reviews:read reviews:write orders:write")

    return make
