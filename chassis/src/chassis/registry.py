"""Self-registration: every service says where it answers, in Redis, so tools find it.

``msa:registry`` is a hash, service name -> ``{"url", "seen_at"}``. Each service writes its entry
when it starts and every ``ANNOUNCE_EVERY_S`` after (so an entry comes back after a Redis restart);
a stopped service's entry stays, ageing, so the dashboard can show it as down instead of
forgetting it. Readers ignore entries not renewed for ``max_age_s``.

The URL is ``ADVERTISE_URL`` when set, else ``http://<host>:<port>`` with the bind address, or,
when the service listens on every interface (``0.0.0.0`` in a container), its service name,
which is its DNS name on the compose network. Replicas of one service share that name and so one
entry: the name resolves to all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from chassis.settings import ServiceSettings

__all__ = ["ANNOUNCE_EVERY_S", "REGISTRY_KEY", "advertised_url", "announce_forever", "registered"]

log = logging.getLogger(__name__)

REGISTRY_KEY = "msa:registry"
ANNOUNCE_EVERY_S = 10.0
_ANY_INTERFACE = {"", "0.0.0.0", "::"}


def advertised_url(settings: ServiceSettings) -> str:
    if settings.advertise_url:
        return settings.advertise_url.rstrip("/")
    host = settings.service_name if settings.host in _ANY_INTERFACE else settings.host
    return f"http://{host}:{settings.port}"


async def announce_forever(client: aioredis.Redis, settings: ServiceSettings, stop: asyncio.Event) -> None:
    """Write this service's entry now and every ``ANNOUNCE_EVERY_S`` until ``stop`` is set (Redis
    down: try again then). Stopped by the event, not by cancelling: a write cut off halfway
    would leave its connection open."""
    failing = False
    while not stop.is_set():
        entry = json.dumps({"url": advertised_url(settings), "seen_at": time.time()})
        try:
            await client.hset(REGISTRY_KEY, settings.service_name, entry)
        except (RedisError, OSError) as exc:
            if not failing:
                log.warning("not registered in %s: Redis unreachable (%s)", REGISTRY_KEY, type(exc).__name__)
            failing = True
        else:
            failing = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ANNOUNCE_EVERY_S)


async def registered(client: aioredis.Redis, *, max_age_s: float) -> dict[str, str]:
    """Service name -> URL of every entry renewed within ``max_age_s`` (raises RedisError)."""
    now = time.time()
    found: dict[str, str] = {}
    for name, raw in (await client.hgetall(REGISTRY_KEY)).items():
        try:
            entry: dict[str, Any] = json.loads(raw)
            url, seen_at = str(entry["url"]), float(entry["seen_at"])
        except (ValueError, KeyError, TypeError):
            continue  # an entry nobody of ours wrote
        if now - seen_at <= max_age_s and url.startswith(("http://", "https://")):
            found[name.decode() if isinstance(name, bytes) else str(name)] = url
    return found
