"""Entry point: ``auth-service`` (console script) or ``create()`` for tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from auth_service.oauth.repository import SessionStore
from auth_service.oauth.router import router as oauth_router
from auth_service.settings import Settings
from auth_service.signing.keyring import KeyRing, load_keyring
from auth_service.users.service import PasswordChecker
from auth_service.wellknown.router import router as wellknown_router
from chassis import create_app, serve
from chassis.config_client import load_settings
from chassis.state import chassis_state, provide, resource

__all__ = ["create", "run"]


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        provide(app, await asyncio.to_thread(load_keyring, settings))
        provide(app, SessionStore(chassis_state(app).redis))
        checker = provide(app, PasswordChecker(settings.login_hash_slots))
        try:
            yield
        finally:
            checker.close()

    async def signing_key() -> dict[str, Any]:
        keyring = resource(app, KeyRing)
        return {"kid": keyring.active.kid, "published": len(keyring.published())}

    app = create_app(
        settings,
        title="auth-service",
        description="Users, login, RS256 JWT + JWKS, refresh-token sessions, introspection.",
        routers=[oauth_router, wellknown_router],
        ready_checks={"signing_key": signing_key},
        lifespan=lifespan,
    )
    return app


def run() -> None:
    serve(create)
