"""Entry point: ``auth-service`` (console script) or ``create()`` for tests."""

from __future__ import annotations

from fastapi import FastAPI

from auth_service.settings import Settings
from chassis import create_app, serve
from chassis.config_client import load_settings

__all__ = ["create", "run"]


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    return create_app(
        settings,
        title="auth-service",
        description="Users, login, RS256 JWT + JWKS, refresh-token sessions, introspection.",
    )


def run() -> None:
    serve(create)
