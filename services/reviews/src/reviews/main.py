"""Entry point: ``reviews`` (console script) or ``create()`` for tests."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from chassis import create_app, serve
from chassis.config_client import load_settings
from chassis.state import chassis_state, provide
from chassis.store import Database
from reviews.product_reviews import repository
from reviews.product_reviews.router import router as reviews_router
from reviews.settings import Settings

__all__ = ["create", "run"]

MIGRATIONS = Path(__file__).parent / "migrations"  # Alembic: run to head at start-up


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    db = Database.for_service(
        settings,
        "reviews",
        migrations=MIGRATIONS,
        seed=repository.seed,
        write_fault_rate=lambda: chassis_state(app).live.current.chaos.store_error_rate,
    )

    app = create_app(
        settings,
        title="reviews",
        description="Product reviews: paged lists, rating summaries for several products, create as a user.",
        routers=[reviews_router],
        downstreams={"auth-service": settings.auth_service_url},  # JWKS for verifying tokens
        ready_checks={"store": db.ping},
        lifespan=db.lifespan,
        max_body_bytes=64 * 1024,
    )
    provide(app, db)
    return app


def run() -> None:
    serve(create)
