"""gateway-web auth tests: the gateway in-process, a real auth-service on a socket, real Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from auth_service.main import create as create_auth
from auth_service.settings import Settings as AuthServiceSettings
from gateway_web.main import create
from gateway_web.settings import Settings
from msa_cli.devstack import free_port


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app on a real socket (uvicorn in this loop): the gateway reaches it over HTTP."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, lifespan="on", timeout_graceful_shutdown=3
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def auth_settings(tmp_path: Path, redis_url: str) -> AuthServiceSettings:
    return AuthServiceSettings(
        data_dir=tmp_path / "auth", redis_url=redis_url, zipkin_endpoint=None, env="test"
    )


@pytest.fixture
async def auth_url(auth_settings: AuthServiceSettings) -> AsyncIterator[str]:
    async with served(create_auth(auth_settings)) as url:
        yield url


@pytest.fixture
def make_gateway(auth_url: str, redis_url: str) -> Callable[..., FastAPI]:
    def make(**overrides: Any) -> FastAPI:
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "auth_service_url": auth_url,
            "catalog_url": f"http://127.0.0.1:{free_port()}",
            "zipkin_endpoint": None,
            "env": "test",
        }
        values.update(overrides)
        return create(Settings(**values))

    return make


async def wait_subscribed(app: FastAPI) -> None:
    for _ in range(100):
        if app.state.auth_client.subscribed:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the revocation listener did not subscribe")


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        await wait_subscribed(app)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway-web"
        ) as client:
            yield client


@pytest.fixture
def gateway_app(make_gateway: Callable[..., FastAPI]) -> FastAPI:
    return make_gateway()


@pytest.fixture
async def web(gateway_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(gateway_app) as client:
        yield client


@pytest.fixture
def run() -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with run(app) as client``: a gateway with its lifespan and revocation listener."""
    return running
