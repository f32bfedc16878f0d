"""inventory honours chaos.* from live settings: broken and healed without a restart."""

from __future__ import annotations

import time

import httpx
from fastapi import FastAPI

from chassis import LiveSettings
from chassis.settings import ChaosSettings, RouteChaos
from chassis.state import chassis_state


def set_chaos(app: FastAPI, chaos: ChaosSettings) -> None:
    live: LiveSettings = chassis_state(app).live  # type: ignore[type-arg]
    live.replace(live.current.model_copy(update={"chaos": chaos}))


async def test_error_rate_one_breaks_and_zero_heals(
    inventory: httpx.AsyncClient, inventory_app: FastAPI
) -> None:
    assert (await inventory.get("/stock/p-1001")).status_code == 200
    set_chaos(inventory_app, ChaosSettings(error_rate=1.0))
    broken = await inventory.get("/stock/p-1001")
    assert broken.status_code == 500
    assert broken.headers["content-type"].startswith("application/problem+json")
    assert broken.json()["title"] == "Injected fault"
    assert (await inventory.get("/health/ready")).status_code == 200  # health is exempt
    set_chaos(inventory_app, ChaosSettings(error_rate=0.0))
    assert (await inventory.get("/stock/p-1001")).status_code == 200


async def test_per_route_values_override_the_service_wide_ones(
    inventory: httpx.AsyncClient, inventory_app: FastAPI
) -> None:
    set_chaos(
        inventory_app,
        ChaosSettings(error_status=503, routes={"/reservations": RouteChaos(error_rate=1.0)}),
    )
    assert (await inventory.get("/stock/p-1001")).status_code == 200
    body = {"order_id": "o-chaos", "lines": [{"sku": "p-1001", "quantity": 1}]}
    assert (await inventory.post("/reservations", json=body)).status_code == 503
    assert (await inventory.get("/reservations/o-chaos")).status_code == 503
    set_chaos(inventory_app, ChaosSettings())
    assert (await inventory.get("/reservations/o-chaos")).status_code == 404  # nothing was reserved


async def test_latency_is_added_before_the_handler(
    inventory: httpx.AsyncClient, inventory_app: FastAPI
) -> None:
    set_chaos(inventory_app, ChaosSettings(routes={"/stock": RouteChaos(latency_ms=300)}))
    start = time.perf_counter()
    assert (await inventory.get("/stock/p-1001")).status_code == 200
    assert time.perf_counter() - start >= 0.3


async def test_store_faults_fail_writes_and_keep_nothing(
    inventory: httpx.AsyncClient, inventory_app: FastAPI
) -> None:
    set_chaos(inventory_app, ChaosSettings(store_error_rate=1.0))
    body = {"order_id": "o-store", "lines": [{"sku": "p-1001", "quantity": 1}]}
    failed = await inventory.post("/reservations", json=body)
    assert failed.status_code == 503
    set_chaos(inventory_app, ChaosSettings())
    assert (await inventory.get("/reservations/o-store")).status_code == 404


def test_remote_keys_in_spring_form_bind_to_routes() -> None:
    from inventory.settings import Settings

    settings = Settings.load(
        remote={
            "chaos.error_rate": "0.25",
            "chaos.routes[/stock].latency_ms": 50,
            "chaos.routes./x.error_rate": 1,
        }
    )
    assert settings.chaos.error_rate == 0.25
    assert settings.chaos.routes["/stock"].latency_ms == 50
    assert settings.chaos.routes["/x"].error_rate == 1.0
