"""inventory tests: the real app in-process, a real SQLite file in tmp_path, real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from inventory.main import create
from inventory.settings import Settings


@pytest.fixture
def inventory_app(tmp_path: Path, redis_url: str) -> FastAPI:
    settings = Settings(
        data_dir=tmp_path / "inventory", redis_url=redis_url, zipkin_endpoint=None, env="test"
    )
    return create(settings)


@pytest.fixture
async def inventory(inventory_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with inventory_app.router.lifespan_context(inventory_app):
        transport = httpx.ASGITransport(app=inventory_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inventory") as client:
            yield client
