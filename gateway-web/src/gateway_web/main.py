"""Entry point: ``gateway-web`` (console script) or ``create()`` for tests."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.requests import HTTPConnection

from chassis import create_app, serve
from chassis.auth import auth_client_lifespan
from chassis.config_client import load_settings
from chassis.ratelimit import install_rate_limit
from chassis.state import chassis_state
from gateway_web.auth.router import router as auth_router
from gateway_web.orders.router import router as orders_router
from gateway_web.products.router import router as products_router
from gateway_web.settings import Settings
from gateway_web.storefront.router import UNTRACED_PATHS, StorefrontFiles
from gateway_web.storefront.router import router as storefront_router

__all__ = ["create", "run"]

MAX_BODY_BYTES = 64 * 1024


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    app = create_app(
        settings,
        title="gateway-web",
        description="BFF for browsers: rich aggregated views.",
        routers=[products_router, orders_router, auth_router, storefront_router],
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
        untraced_paths=UNTRACED_PATHS,  # the storefront's page, files and pictures: its API calls are traced
    )
    app.mount("/storefront", StorefrontFiles(), name="storefront")  # after the routes: config.json wins
    install_rate_limit(app, credential=session_cookie)  # rate_limit: per address, and per session
    return app


def session_cookie(connection: HTTPConnection) -> str | None:
    """What a browser's per-principal rate limit is keyed by (a digest of it): its session cookie."""
    settings: Settings = chassis_state(connection.app).live.current
    return connection.cookies.get(settings.auth.cookie_name)


def run() -> None:
    serve(create)
