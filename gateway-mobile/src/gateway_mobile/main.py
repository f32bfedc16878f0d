"""Entry point: ``gateway-mobile`` (console script) or ``create()`` for tests."""

from __future__ import annotations

from fastapi import FastAPI

from chassis import create_app, serve
from chassis.auth import auth_client_lifespan
from chassis.config_client import load_settings
from chassis.ratelimit import install_rate_limit
from gateway_mobile.auth.router import me_router
from gateway_mobile.auth.router import router as auth_router
from gateway_mobile.orders.router import router as orders_router
from gateway_mobile.products.router import router as products_router
from gateway_mobile.settings import Settings

__all__ = ["create", "run"]

MAX_BODY_BYTES = 64 * 1024


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    app = create_app(
        settings,
        title="gateway-mobile",
        description="BFF for mobile apps: compact payloads.",
        routers=[products_router, orders_router, auth_router, me_router],
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
    install_rate_limit(app)  # rate_limit: per address, and per bearer token where one is sent
    return app


def run() -> None:
    serve(create)
