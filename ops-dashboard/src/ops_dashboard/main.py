"""Entry point: ``ops-dashboard`` (console script) or ``create()`` for tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from chassis import create_app, serve
from chassis.config_client import load_settings
from chassis.registry import registered
from chassis.state import chassis_state, provide
from ops_dashboard.live.dashboard import Dashboard
from ops_dashboard.live.feed import RedisFeed
from ops_dashboard.live.router import router as live_router
from ops_dashboard.pages.router import router as page_router
from ops_dashboard.pages.router import static_files
from ops_dashboard.peers.service import HealthPoller
from ops_dashboard.settings import Settings

__all__ = ["create", "run"]


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The Redis subscriber, the once-a-second ticker and the health poller, for the app's life."""
    settings: Settings = chassis_state(app).live.current
    # Health probes are monitoring, not service calls: no breaker, no spans (see peers/service.py).
    probes = httpx.AsyncClient(timeout=settings.health_timeout_s, follow_redirects=False)  # noqa: TID251

    async def from_registry() -> dict[str, str]:
        return await registered(chassis_state(app).redis, max_age_s=settings.registry_max_age_s)

    # no fixed list (SERVICE_URLS): every service that registered itself
    poller = HealthPoller(
        settings.service_targets, probes, None if settings.service_targets else from_registry
    )
    dashboard = Dashboard(settings=settings, poller=poller)
    feed = RedisFeed(dashboard, settings.redis_url)
    provide(app, dashboard)
    tasks = [
        asyncio.create_task(feed.run(), name="dashboard-redis-feed"),
        asyncio.create_task(dashboard.run_ticker(), name="dashboard-ticker"),
        asyncio.create_task(dashboard.poller.run(settings.health_poll_s), name="dashboard-health-poller"),
    ]
    try:
        yield
    finally:
        dashboard.hub.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await feed.aclose()
        await probes.aclose()


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    app = create_app(
        settings,
        title="ops-dashboard",
        description="Live circuit-breaker dashboard and error-log alerts.",
        routers=[page_router, live_router],
        lifespan=lifespan,
    )
    app.mount("/static", static_files(), name="static")
    return app


def run() -> None:
    serve(create)
