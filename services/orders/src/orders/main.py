"""Entry point: ``orders`` (console script) or ``create()`` for tests."""

from __future__ import annotations

from fastapi import FastAPI

from chassis import create_app, serve
from chassis.config_client import load_settings
from orders.settings import Settings

__all__ = ["create", "run"]


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    return create_app(
        settings,
        title="orders",
        description="Orders, created idempotently, priced by catalog, reserved in inventory.",
        downstreams={"catalog": settings.catalog_url, "inventory": settings.inventory_url},
    )


def run() -> None:
    serve(create)
