"""catalog tests: the real app in-process, a real SQLite file in tmp_path, real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI

from catalog.main import create
from catalog.settings import Settings


def make_settings(data_dir: Path, redis_url: str) -> Settings:
    return Settings(data_dir=data_dir, redis_url=redis_url, zipkin_endpoint=None, env="test")


@pytest.fixture
def catalog_app(tmp_path: Path, redis_url: str) -> FastAPI:
    return create(make_settings(tmp_path / "catalog", redis_url))


@pytest.fixture
async def catalog(catalog_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with catalog_app.router.lifespan_context(catalog_app):
        transport = httpx.ASGITransport(app=catalog_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
            yield client


@pytest.fixture
def bearer() -> Callable[..., dict[str, str]]:
    """Authorization header for a caller with the given scopes."""

    def make(sub: str = "admin", scope: str = "catalog:write") -> dict[str, str]:
        token = jwt.encode(
            {"sub": sub, "scope": scope}, "test-only-key-of-thirty-two-bytes!", algorithm="HS256"
        )
        return {"Authorization": f"Bearer {token}"}

    return make
