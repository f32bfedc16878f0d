"""Fault injection by configuration (the "chaos" flags of a domain service).

``inject_faults`` is a router dependency: it reads ``chaos.*`` from the live settings snapshot on
every request, so a config refresh breaks or heals a service without a restart. It runs inside
the chassis middleware and tracing, so an injected error is an ordinary problem+json answer with
a trace id and an access-log line. Health and ops routes are exempt (they are never given it, and
the path check below keeps it so if someone adds it app-wide).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from fastapi import Request

from chassis import deadline
from chassis.errors import ServiceError
from chassis.paths import exempt, under_prefix
from chassis.settings import ChaosSettings
from chassis.state import chassis_state

__all__ = ["ChaosFault", "Faults", "faults_for", "inject_faults"]

log = logging.getLogger(__name__)


class ChaosFault(ServiceError):
    """An error injected on purpose by ``chaos.error_rate``."""

    status = 500
    title = "Injected fault"


@dataclass(frozen=True)
class Faults:
    error_rate: float
    latency_ms: int


def faults_for(chaos: ChaosSettings, path: str) -> Faults:
    """The service-wide values, overridden by every matching ``chaos.routes`` prefix, longest last."""
    if exempt(path):
        return Faults(0.0, 0)
    error_rate, latency_ms = chaos.error_rate, chaos.latency_ms
    # Shorter prefixes first, so a longer one overrides only the values it sets.
    for prefix in sorted((p for p in chaos.routes if under_prefix(path, p)), key=len):
        route = chaos.routes[prefix]
        if route.error_rate is not None:
            error_rate = route.error_rate
        if route.latency_ms is not None:
            latency_ms = route.latency_ms
    return Faults(error_rate, latency_ms)


async def inject_faults(request: Request) -> None:
    """``APIRouter(dependencies=[Depends(inject_faults)])`` on every domain router."""
    chaos: ChaosSettings = chassis_state(request.app).live.current.chaos
    faults = faults_for(chaos, request.url.path)
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
        deadline.check("the handler, after the injected delay")  # a caller gone: no work for it
    if faults.error_rate and random.random() < faults.error_rate:
        log.info("chaos: injected %s on %s %s", chaos.error_status, request.method, request.url.path)
        raise ChaosFault("Fault injected by configuration (chaos.error_rate).", status=chaos.error_status)
