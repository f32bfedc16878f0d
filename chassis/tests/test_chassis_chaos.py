"""chassis.chaos: which values apply to a path, and the dependency on a real app."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Depends

from chassis import LiveSettings, ServiceSettings, create_app
from chassis.chaos import Faults, faults_for, inject_faults
from chassis.settings import ChaosSettings, RouteChaos
from chassis.state import chassis_state


def test_longest_prefix_wins_and_missing_values_inherit() -> None:
    chaos = ChaosSettings(
        error_rate=0.1,
        latency_ms=50,
        routes={"/products": RouteChaos(error_rate=0.5), "/products/batch": RouteChaos(latency_ms=0)},
    )
    assert faults_for(chaos, "/stock") == Faults(0.1, 50)  # service-wide
    assert faults_for(chaos, "/products") == Faults(0.5, 50)
    assert faults_for(chaos, "/products/p-1") == Faults(0.5, 50)
    assert faults_for(chaos, "/products/batch") == Faults(0.5, 0)
    assert faults_for(chaos, "/productsx") == Faults(0.1, 50)  # a prefix matches whole segments only


def test_health_ops_and_docs_are_exempt() -> None:
    chaos = ChaosSettings(error_rate=1.0, latency_ms=1000, routes={"/": RouteChaos(error_rate=1.0)})
    for path in ("/health/live", "/health/ready", "/ops/telemetry", "/docs", "/openapi.json"):
        assert faults_for(chaos, path) == Faults(0.0, 0), path


def test_spring_style_route_keys_bind() -> None:
    settings = ServiceSettings.load(
        remote={"chaos.routes[/reviews].error_rate": 1, "chaos.routes./stock.latency_ms": "20"}
    )
    assert settings.chaos.routes == {
        "/reviews": RouteChaos(error_rate=1.0),
        "/stock": RouteChaos(latency_ms=20),
    }


async def test_live_settings_break_and_heal_a_route(redis_url: str) -> None:
    router = APIRouter(dependencies=[Depends(inject_faults)])

    @router.get("/things")
    async def things() -> dict[str, str]:
        return {"ok": "yes"}

    settings = ServiceSettings(
        service_name="chaos-test", redis_url=redis_url, zipkin_endpoint=None, env="test"
    )
    app = create_app(settings, routers=[router])
    live: LiveSettings[ServiceSettings] = chassis_state(app).live
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/things")).status_code == 200
            live.replace(
                settings.model_copy(update={"chaos": ChaosSettings(error_rate=1.0, error_status=503)})
            )
            broken = await client.get("/things")
            assert broken.status_code == 503
            assert broken.headers["content-type"] == "application/problem+json"
            assert broken.json()["trace_id"]
            assert (await client.get("/health/live")).status_code == 200
            live.replace(settings)
            assert (await client.get("/things")).status_code == 200
