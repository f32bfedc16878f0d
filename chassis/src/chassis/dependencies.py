"""FastAPI dependencies every service uses; services wrap them in ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import redis.asyncio as aioredis
from fastapi import Depends, Request

from chassis.http import Downstream
from chassis.settings import ServiceSettings
from chassis.state import chassis_state

__all__ = ["RedisDep", "downstream", "get_redis", "get_settings", "settings_of"]

S = TypeVar("S", bound=ServiceSettings)


# Every dependency here is ``async def``: FastAPI runs a plain ``def`` dependency in a worker
# thread, a hop per request for what is an attribute read.


def settings_of(cls: type[S]) -> Callable[[Request], Awaitable[S]]:
    """``SettingsDep = Annotated[Settings, Depends(settings_of(Settings))]``: the service's current
    settings snapshot (a config refresh swaps it between requests, never during one)."""

    async def current(request: Request) -> S:
        settings: S = chassis_state(request.app).live.current
        return settings

    current.__name__ = f"settings_of_{cls.__module__.split('.')[0]}"
    return current


get_settings = settings_of(ServiceSettings)


async def get_redis(request: Request) -> aioredis.Redis:
    return chassis_state(request.app).redis


def downstream(callee: str) -> Callable[[Request], Awaitable[Downstream]]:
    """``CatalogDep = Annotated[Downstream, Depends(downstream("catalog"))]``."""

    async def get(request: Request) -> Downstream:
        return chassis_state(request.app).downstreams[callee]

    get.__name__ = f"downstream_{callee}"
    return get


RedisDep = Annotated[aioredis.Redis, Depends(get_redis)]
