"""catalog tests: the real app in-process, a real SQLite file in tmp_path, real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from catalog.main import create
from catalog.settings import Settings
from msa_testing.apps import TokenIssuer, asgi_client


def make_settings(data_dir: Path, redis_url: str) -> Settings:
    return Settings(data_dir=data_dir, redis_url=redis_url, zipkin_endpoint=None, env="test")


@pytest.fixture
def catalog_app(tmp_path: Path, redis_url: str, issuer: TokenIssuer) -> FastAPI:
    app = create(make_settings(tmp_path / "catalog", redis_url))
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
