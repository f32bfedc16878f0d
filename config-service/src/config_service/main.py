"""Entry point: ``config-service`` (console script) or ``create()`` for tests.

config-service is the config store: its own settings come from the environment only.
"""

from __future__ import annotations

from fastapi import FastAPI

from chassis import create_app, serve
from chassis.state import provide
from config_service.crypto.router import router as crypto_router
from config_service.environment.router import router as environment_router
from config_service.monitor.router import router as monitor_router
from config_service.settings import Settings
from config_service.store import ConfigStore

__all__ = ["create", "run"]


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.load()
    store = ConfigStore(settings)
    app = create_app(
        settings,
        title="config-service",
        description="Git-backed configuration server with a Spring Cloud Config-compatible API.",
        routers=[crypto_router, monitor_router, environment_router],
        ready_checks={"repository": store.ready},
        lifespan=store.lifespan,
    )
    provide(app, store)
    return app


def run() -> None:
    serve(create)
