"""``/health/live`` (the process answers) and ``/health/ready`` (its own dependencies answer).

Readiness checks only what this service owns or cannot work without (its Redis, its store),
never peers: a peer outage is the breakers' business, not a reason to take this replica out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from chassis.state import chassis_state

__all__ = ["ReadyCheck", "health_router"]

# A check returns details (or None) and raises when the dependency is not usable.
ReadyCheck = Callable[[], Awaitable[dict[str, Any] | None]]

CHECK_TIMEOUT_S = 2.0


def health_router() -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live", summary="The process is up")
    async def live(request: Request) -> dict[str, Any]:
        settings = chassis_state(request.app).live.current
        return {"status": "up", "service": settings.service_name, "version": settings.version}

    @router.get("/ready", summary="The service's own dependencies are reachable")
    async def ready(request: Request) -> JSONResponse:
        checks = chassis_state(request.app).ready_checks
        names = list(checks)
        results = await asyncio.gather(*(_run(checks[name]) for name in names))
        report = dict(zip(names, results, strict=True))
        up = all(result["status"] == "up" for result in report.values())
        body = {"status": "up" if up else "down", "checks": report}
        return JSONResponse(body, status_code=200 if up else 503)

    return router


async def _run(check: ReadyCheck) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            details = await check()
    except Exception as exc:
        result: dict[str, Any] = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    else:
        result = {"status": "up", **(details or {})}
    result["duration_ms"] = round((time.perf_counter() - start) * 1000, 1)
    return result
