"""gateway-web tests: the gateway in-process, a real auth-service on a socket, real Redis.

The shared parts (auth_url, gateway_app, run, served) come from msa_testing.apps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from gateway_web.main import create
from gateway_web.settings import Settings
from msa_testing.apps import gateway_maker, running_gateway


@pytest.fixture
def make_gateway(auth_url: str, redis_url: str) -> Callable[..., FastAPI]:
    return gateway_maker(create, Settings, auth_url=auth_url, redis_url=redis_url)


@pytest.fixture
async def web(gateway_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running_gateway(gateway_app) as client:
        yield client
