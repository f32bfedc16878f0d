"""Entry point: ``catalog`` (console script) or ``create()`` for tests."""

from __future__ import annotations

from fastapi import FastAPI

from catalog.products.router import router as products_router
from catalog.settings import Settings
from chassis import create_app, serve
from chassis.config_client import load_settings

__all__ = ["create", "run"]


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    return create_app(
        settings,
        title="catalog",
        description="The product catalog.",
        routers=[products_router],
    )


def run() -> None:
    serve(create)
