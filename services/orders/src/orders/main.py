"""Entry point: ``orders`` (console script) or ``create()`` for tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import FastAPI

from chassis import create_app, serve
from chassis.auth import service_downstream
from chassis.config_client import load_settings
from chassis.state import chassis_state, provide
from chassis.store import Database
from orders.customer_orders import repository, service
from orders.customer_orders.router import router as orders_router
from orders.settings import Settings

__all__ = ["create", "run"]

MIGRATIONS = Path(__file__).parent / "migrations"  # Alembic: run to head at start-up

log = logging.getLogger(__name__)


def create(settings: Settings | None = None, *, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    db = Database.for_service(
        settings,
        "orders",
        migrations=MIGRATIONS,
        seed=repository.seed,
        write_fault_rate=lambda: chassis_state(app).live.current.chaos.store_error_rate,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with db.lifespan(app):
            recovery = asyncio.create_task(_recover_forever(app, db), name="orders-recovery")
            try:
                yield
            finally:
                recovery.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await recovery

    app = create_app(
        settings,
        title="orders",
        description="Orders: placed idempotently (Idempotency-Key), priced by catalog, stock reserved in "
        "inventory; each user sees only their own.",
        routers=[orders_router],
        downstreams={
            "catalog": settings.catalog_url,
            "inventory": settings.inventory_url,
            "auth-service": settings.auth_service_url,  # JWKS, and orders' own token for inventory
        },
        ready_checks={"store": db.ping},
        lifespan=lifespan,
        transport=transport,
        max_body_bytes=64 * 1024,
    )
    provide(app, db)
    return app


async def _recover_forever(app: FastAPI, db: Database) -> None:
    """Release the stock of abandoned order attempts (see ``service.recover_abandoned``) and
    forget Idempotency-Keys older than ``idempotency_ttl_s``."""
    while True:
        settings: Settings = chassis_state(app).live.current
        await asyncio.sleep(settings.recovery_interval_s)
        try:
            await service.recover_abandoned(
                db=db,
                inventory=service_downstream(app, "inventory"),
                older_than_s=settings.abandoned_after_s,
            )
        except Exception as exc:
            log.warning("order recovery round failed (%s)", type(exc).__name__)
        try:
            await service.purge_expired_keys(db=db, ttl_s=settings.idempotency_ttl_s)
        except Exception as exc:
            log.warning("purging expired idempotency keys failed (%s)", type(exc).__name__)


def run() -> None:
    serve(create)
