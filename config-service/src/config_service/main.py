"""Entry point: ``config-service`` (console script) or ``create()`` for tests.

config-service is the config store: its own settings come from the environment only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from chassis import create_app, serve
from config_service.crypto.router import router as crypto_router
from config_service.crypto.service import Cipher
from config_service.environment.repository import open_repository
from config_service.environment.router import router as environment_router
from config_service.environment.service import EnvironmentService
from config_service.monitor.router import router as monitor_router
from config_service.monitor.service import Monitor
from config_service.settings import Settings

__all__ = ["create", "run"]

log = logging.getLogger(__name__)


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.load()
    environment: EnvironmentService | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal environment
        repository = await asyncio.to_thread(
            open_repository,
            settings.config_repo_uri,
            default_label=settings.config_default_label,
            clone_dir=settings.config_clone_dir,
        )
        cipher = await asyncio.to_thread(Cipher, settings.encrypt_key.get_secret_value())
        if cipher.dev_key:
            log.warning("ENCRYPT_KEY is the development key: fine on a laptop, refused with ENV=production")
        environment = app.state.environment = EnvironmentService(
            repository, search_paths=settings.search_paths, cipher=cipher, uri=settings.config_repo_uri
        )
        app.state.cipher = cipher
        app.state.monitor = monitor = Monitor(environment, app.state.redis)
        log.info(
            "serving %s (%s) from %s", settings.search_paths, repository.kind, repository.describe()["uri"]
        )
        poller = asyncio.create_task(monitor.poll(settings.config_poll_interval_s), name="config-poll")
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def repository_check() -> dict[str, Any]:
        if environment is None:
            raise RuntimeError("repository not opened yet")
        resolved = await environment.call(environment.check_head)
        details: dict[str, Any] = {
            **environment.repository.describe(),
            "search_paths": environment.search_paths,
            "label": resolved.label,
            "version": resolved.version,
            "malformed": [{"path": path, **info} for path, info in sorted(environment.malformed.items())],
        }
        return details

    return create_app(
        settings,
        title="config-service",
        description="Git-backed configuration server with a Spring Cloud Config-compatible API.",
        routers=[crypto_router, monitor_router, environment_router],
        ready_checks={"repository": repository_check},
        lifespan=lifespan,
    )


def run() -> None:
    serve(create)
