"""Opens gateway-web's auth-service client and its revocation listener; closes both on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from chassis.auth import AuthServiceClient, listen_for_revocations

__all__ = ["auth_lifespan"]


@contextlib.asynccontextmanager
async def auth_lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = app.state.live.current
    app.state.auth_client = client = AuthServiceClient(
        downstream=app.state.downstreams["auth-service"],
        client_id=settings.auth.client_id,
        client_secret=settings.auth.client_secret.get_secret_value(),
        cache_s=settings.auth.introspection_cache_s,
    )
    listener = asyncio.create_task(listen_for_revocations(settings.redis_url, client), name="revocations")
    try:
        yield
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
