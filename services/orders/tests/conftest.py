"""orders tests: orders, catalog and inventory apps in-process, wired by ASGI transports (the orders
Downstreams reach the real catalog and inventory apps), each with its own store (on each engine: SQLite files, then real PostgreSQL databases), real Redis."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, text

from catalog.main import create as create_catalog
from catalog.settings import Settings as CatalogSettings
from chassis import BreakerSettings, LiveSettings
from chassis.auth import ServiceTokenProvider
from chassis.settings import ChaosSettings
from chassis.state import chassis_state, provide
from inventory.main import create as create_inventory
from inventory.settings import Settings as InventorySettings
from msa_testing.apps import TokenIssuer
from msa_testing.store import store_connection
from orders.main import create as create_orders
from orders.settings import Settings as OrdersSettings


class LossyTransport(httpx.AsyncBaseTransport):
    """A network that loses answers: the request reaches the service and is handled, then the
    connection drops before the answer arrives (the case where a reservation exists but its
    caller does not know)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, rng: random.Random) -> None:
        self.inner = inner
        self.rng = rng
        self.loss_rate = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if self.rng.random() < self.loss_rate:
            raise httpx.RemoteProtocolError("connection lost after the request was handled")
        return response


class RoutingTransport(httpx.AsyncBaseTransport):
    """Sends each request to the in-process app named by its host (http://catalog -> catalog app)."""

    def __init__(self, routes: Mapping[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = dict(routes)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.routes.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(f"no service at {request.url.host}", request=request)
        return await transport.handle_async_request(request)


def set_chaos(app: FastAPI, chaos: ChaosSettings) -> None:
    live: LiveSettings[Any] = chassis_state(app).live
    live.replace(live.current.model_copy(update={"chaos": chaos}))


@dataclass
class Platform:
    orders: httpx.AsyncClient
    orders_app: FastAPI
    catalog_app: FastAPI
    inventory_app: FastAPI
    inventory_link: LossyTransport
    issuer: TokenIssuer
    make_replica: Callable[[], FastAPI]  # another orders app on the same store and links

    def headers(
        self, user: str, key: str | None = None, scope: str = "orders:read orders:write"
    ) -> dict[str, str]:
        headers = self.issuer.headers(user, scope)
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def inventory_db(self) -> contextlib.AbstractContextManager[Connection]:
        return store_connection(self.inventory_app)

    def orders_db(self) -> contextlib.AbstractContextManager[Connection]:
        return store_connection(self.orders_app)

    def reserved_units(self, sku: str) -> int:
        with self.inventory_db() as conn:
            value: int = conn.execute(
                text("SELECT reserved FROM stock WHERE sku = :sku"), {"sku": sku}
            ).scalar_one()
        return value


async def _service_token(issuer: TokenIssuer) -> tuple[str, float]:
    return issuer.token("service:orders", "inventory:reserve"), 300.0


@pytest.fixture
async def platform(
    store_url: Callable[[str], str], redis_url: str, issuer: TokenIssuer
) -> AsyncIterator[Platform]:
    common: dict[str, Any] = {"redis_url": redis_url, "zipkin_endpoint": None, "env": "test"}
    catalog_app = create_catalog(CatalogSettings(database_url=store_url("catalog"), **common))
    inventory_app = create_inventory(InventorySettings(database_url=store_url("inventory"), **common))
    link = LossyTransport(httpx.ASGITransport(app=inventory_app), random.Random(7))
    transport = RoutingTransport({"catalog": httpx.ASGITransport(app=catalog_app), "inventory": link})
    orders_settings = OrdersSettings(
        database_url=store_url("orders"),
        catalog_url="http://catalog",
        inventory_url="http://inventory",
        breaker=BreakerSettings(fail_max=5, reset_timeout_s=0.2),
        abandoned_after_s=0.2,
        recovery_interval_s=3600,  # the tests run recovery themselves
        **common,
    )

    def make_orders() -> FastAPI:
        app = create_orders(orders_settings, transport=transport)
        issuer.install(app)
        # stands in for auth-service's client_credentials
        provide(app, ServiceTokenProvider(fetch=lambda: _service_token(issuer)))
        return app

    orders_app = make_orders()
    for app in (catalog_app, inventory_app):
        issuer.install(app)
    async with AsyncExitStack() as stack:
        for app in (catalog_app, inventory_app, orders_app):
            await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=orders_app), base_url="http://orders")
        )
        yield Platform(client, orders_app, catalog_app, inventory_app, link, issuer, make_orders)
