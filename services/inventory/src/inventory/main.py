"""Entry point: ``inventory`` (console script) or ``create()`` for tests."""

from __future__ import annotations

from fastapi import FastAPI

from chassis import create_app, serve
from chassis.config_client import load_settings
from chassis.sqlite import Database
from chassis.state import chassis_state, provide
from inventory.settings import Settings
from inventory.stock import repository
from inventory.stock.router import router as stock_router

__all__ = ["create", "run"]


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    db = Database(
        settings.data_dir / "inventory.sqlite3",
        schema=repository.SCHEMA,
        seed=repository.seed,
        write_fault_rate=lambda: chassis_state(app).live.current.chaos.store_error_rate,
    )

    app = create_app(
        settings,
        title="inventory",
        description="Stock per SKU; reservations all-or-nothing and idempotent by order id.",
        routers=[stock_router],
        downstreams={"auth-service": settings.auth_service_url},  # JWKS for verifying tokens
        ready_checks={"store": db.ping},
        lifespan=db.lifespan,
        max_body_bytes=64 * 1024,
    )
    provide(app, db)
    return app


def run() -> None:
    serve(create)
