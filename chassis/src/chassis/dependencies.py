"""FastAPI dependencies every service uses; services wrap them in ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Request

from chassis.http import Downstream
from chassis.settings import ServiceSettings

__all__ = ["RedisDep", "downstream", "get_redis", "get_settings"]


def get_settings(request: Request) -> ServiceSettings:
    """The current snapshot (refreshes swap it); services narrow the type in their own alias."""
    settings: ServiceSettings = request.app.state.live.current
    return settings


def get_redis(request: Request) -> aioredis.Redis:
    client: aioredis.Redis = request.app.state.redis
    return client


def downstream(callee: str) -> Callable[[Request], Downstream]:
    """``CatalogDep = Annotated[Downstream, Depends(downstream("catalog"))]``."""

    def get(request: Request) -> Downstream:
        client: Downstream = request.app.state.downstreams[callee]
        return client

    get.__name__ = f"downstream_{callee}"
    return get


RedisDep = Annotated[aioredis.Redis, Depends(get_redis)]
