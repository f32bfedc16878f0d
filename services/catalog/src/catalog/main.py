"""Entry point: ``catalog`` (console script) or ``create()`` for tests."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from catalog.products import repository
from catalog.products.router import router as products_router
from catalog.settings import Settings
from chassis import create_app, serve
from chassis.config_client import load_settings
from chassis.state import chassis_state, provide
from chassis.store import Database

__all__ = ["create", "run"]

MIGRATIONS = Path(__file__).parent / "migrations"  # Alembic: run to head at start-up


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    db = Database.for_service(
        settings,
        "catalog",
        migrations=MIGRATIONS,
        seed=repository.seed,
        write_fault_rate=lambda: chassis_state(app).live.current.chaos.store_error_rate,
    )

    app = create_app(
        settings,
        title="catalog",
        description="The product catalog: list, search, get, batch get; admin create and update.",
        routers=[products_router],
        downstreams={"auth-service": settings.auth_service_url},  # JWKS for verifying tokens
        ready_checks={"store": db.ping},
        lifespan=db.lifespan,
        max_body_bytes=64 * 1024,
    )
    provide(app, db)
    return app


def run() -> None:
    serve(create)
