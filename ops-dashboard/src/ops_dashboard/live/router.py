"""``GET /stream``: the page's live feed (server-sent events); ``GET /api/state`` and
``GET /api/alerts``: the same data once, for scripts and curl."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ops_dashboard.dependencies import DashboardDep
from ops_dashboard.live.dashboard import Dashboard
from ops_dashboard.live.hub import sse_frame

__all__ = ["router"]

router = APIRouter(tags=["live"])

# The browser reconnects this long after the stream broke.
RETRY_MS = 2000


@router.get(
    "/stream",
    summary="Live aggregated breaker state, edge counts, services and alerts (text/event-stream)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(dashboard: DashboardDep) -> StreamingResponse:
    return StreamingResponse(
        _events(dashboard),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(dashboard: Dashboard) -> AsyncIterator[bytes]:
    """Current state with history and the alert backlog first, then every tick and alert as it
    comes, with a comment line every ``heartbeat_s``. Starlette cancels this generator when the
    client disconnects; the subscription is released on the way out."""
    heartbeat_s = dashboard.settings.heartbeat_s
    with dashboard.hub.subscribe() as queue:
        yield f"retry: {RETRY_MS}\n\n".encode()
        yield sse_frame("state", dashboard.state(full=True))
        yield sse_frame("alerts", dashboard.alerts.newest_first())
        next_heartbeat = time.monotonic() + heartbeat_s
        while True:
            try:
                async with asyncio.timeout(max(0.0, next_heartbeat - time.monotonic())):
                    frame = await queue.get()
            except TimeoutError:
                frame = b""
            if frame is None:  # shutdown, or this client fell too far behind
                return
            if frame:
                yield frame
            if time.monotonic() >= next_heartbeat:
                yield b": heartbeat\n\n"
                next_heartbeat = time.monotonic() + heartbeat_s


@router.get("/api/state", summary="The aggregated state the stream sends, once")
async def state(dashboard: DashboardDep) -> dict[str, Any]:
    return dashboard.state(full=True)


@router.get("/api/alerts", summary="The alerts kept in memory, newest first")
async def alerts(dashboard: DashboardDep) -> list[dict[str, Any]]:
    return dashboard.alerts.newest_first()
