"""Entry point: ``config-service`` (console script) or ``create()`` for tests."""

from __future__ import annotations

from fastapi import FastAPI

from chassis import create_app, serve
from chassis.config_client import load_settings
from config_service.settings import Settings

__all__ = ["create", "run"]


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    return create_app(
        settings,
        title="config-service",
        description="Git-backed configuration server with a Spring Cloud Config-compatible API.",
    )


def run() -> None:
    serve(create)
