"""auth-service tests: the real app in-process, real Redis (shared fixture), a key dir in tmp_path."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from auth_service.main import create
from auth_service.settings import Settings


@pytest.fixture
def make_settings(tmp_path: Path, redis_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "auth",
            "redis_url": redis_url,
            "zipkin_endpoint": None,
            "env": "test",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def auth_app(make_settings: Callable[..., Settings]) -> FastAPI:
    return create(make_settings())


@pytest.fixture
async def auth(auth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with auth_app.router.lifespan_context(auth_app):
        transport = httpx.ASGITransport(app=auth_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth-service") as client:
            yield client


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = {k: v for k, v in record.__dict__.items() if k not in {"args", "msg"}}
        self.lines.append(record.getMessage() + " " + json.dumps(fields, default=str))


@pytest.fixture
def captured_logs(auth_app: FastAPI) -> Iterator[list[str]]:
    """Every log record of the test (message and all fields), as the sinks would see them.
    Installed after the app exists: configuring logging replaces the root handlers."""
    handler = _Collect()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(previous)
