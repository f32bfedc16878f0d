"""reviews tests: the real app in-process, a real SQLite file in tmp_path, real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI

from reviews.main import create
from reviews.settings import Settings


@pytest.fixture
def reviews_data_dir(tmp_path: Path) -> Path:
    return tmp_path / "reviews"


@pytest.fixture
def reviews_app(reviews_data_dir: Path, redis_url: str) -> FastAPI:
    return create(Settings(data_dir=reviews_data_dir, redis_url=redis_url, zipkin_endpoint=None, env="test"))


@pytest.fixture
async def reviews(reviews_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with reviews_app.router.lifespan_context(reviews_app):
        transport = httpx.ASGITransport(app=reviews_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reviews") as client:
            yield client


@pytest.fixture
def user_headers() -> Callable[[str], dict[str, str]]:
    def make(sub: str) -> dict[str, str]:
        token = jwt.encode(
            {"sub": sub, "scope": "reviews:write"}, "test-only-key-of-thirty-two-bytes!", "HS256"
        )
        return {"Authorization": f"Bearer {token}"}

    return make
