"""Entry point: ``gateway-web`` (console script) or ``create()`` for tests."""

from __future__ import annotations

from fastapi import FastAPI

from chassis import create_app, serve
from chassis.auth import auth_client_lifespan
from chassis.config_client import load_settings
from gateway_web.auth.router import router as auth_router
from gateway_web.orders.router import router as orders_router
from gateway_web.products.router import router as products_router
from gateway_web.settings import Settings

__all__ = ["create", "run"]

MAX_BODY_BYTES = 64 * 1024


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    app = create_app(
        settings,
        title="gateway-web",
        description="BFF for browsers: rich aggregated views.",
        routers=[products_router, orders_router, auth_router],
        downstreams={
            "catalog": settings.catalog_url,
            "inventory": settings.inventory_url,
            "reviews": settings.reviews_url,
            "orders": settings.orders_url,
            "auth-service": settings.auth_service_url,
        },
        lifespan=auth_client_lifespan,
        # Orders and reviews are small JSON: refuse a large body before it is read (413 problem+json).
        max_body_bytes=MAX_BODY_BYTES,
    )
    return app


def run() -> None:
    serve(create)
