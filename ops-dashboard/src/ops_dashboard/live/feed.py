"""The Redis subscriber: breaker metrics (channel ``msa:metrics``) and error-log alerts (channel
``msa:alerts``) on one connection, reconnecting with back-off when Redis goes away.

On every (re)connect the current ``msa:metrics:*`` keys are read once, so a page opened after a
restart shows every replica at once instead of waiting for their next publish; each key's
remaining TTL tells how old its report is.
"""

from __future__ import annotations

import json
import logging
import time

import redis.asyncio as aioredis

from chassis.app import METRICS_CHANNEL, METRICS_KEY_PREFIX, METRICS_TTL_S
from chassis.pubsub import subscribe_forever
from ops_dashboard.live.dashboard import Dashboard

__all__ = ["ALERTS_CHANNEL", "RedisFeed"]

log = logging.getLogger(__name__)

ALERTS_CHANNEL = "msa:alerts"
_BACKOFF_MAX_S = 5.0


class RedisFeed:
    def __init__(self, dashboard: Dashboard, redis_url: str) -> None:
        self._dashboard = dashboard
        # Own client: a subscribed connection is not usable for commands, and it waits for messages
        # far longer than the request-path socket timeout of the shared pool.
        self._client = aioredis.Redis.from_url(
            redis_url, socket_connect_timeout=1.0, socket_timeout=5.0, health_check_interval=5
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run(self) -> None:
        status = self._dashboard.redis

        async def subscribed(again: bool) -> None:
            await self._bootstrap()  # replicas' last snapshots: what was missed while away
            if status.set("up"):
                log.info("subscribed to %s and %s", METRICS_CHANNEL, ALERTS_CHANNEL)

        async def lost(exc: Exception) -> None:
            status.set("down", f"{type(exc).__name__}: {exc}"[:200])

        async def message(channel: str, data: bytes) -> None:
            self._dispatch_safely(channel, data)

        await subscribe_forever(
            "dashboard feed",
            "",
            [METRICS_CHANNEL, ALERTS_CHANNEL],
            on_message=message,
            on_subscribed=subscribed,
            on_lost=lost,
            backoff_max_s=_BACKOFF_MAX_S,
            client=self._client,
        )

    def _dispatch_safely(self, channel: str, data: bytes) -> None:
        """One odd message must not end the subscription (nothing would update any more)."""
        try:
            self._dispatch(channel, data)
        except Exception:
            self._dashboard.store.rejected += 1
            log.exception("a message on %r could not be handled", channel)

    def _dispatch(self, channel: str, data: bytes) -> None:
        if channel == ALERTS_CHANNEL:
            self._dashboard.on_alert(data)
        elif channel == METRICS_CHANNEL:
            try:
                payload = json.loads(data)
            except ValueError:
                self._dashboard.store.rejected += 1
                return
            self._dashboard.on_metrics(payload)

    async def _bootstrap(self) -> None:
        keys = [key async for key in self._client.scan_iter(match=f"{METRICS_KEY_PREFIX}:*", count=500)]
        if not keys:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
                pipe.pttl(key)
            results = await pipe.execute()
        now = time.monotonic()
        for raw, pttl in zip(results[::2], results[1::2], strict=True):
            if raw is None:
                continue
            try:
                payload = json.loads(raw)
            except ValueError:
                continue
            # Written with a TTL of METRICS_TTL_S: what is left tells when it was written.
            age = max(0.0, METRICS_TTL_S - pttl / 1000) if isinstance(pttl, int) and pttl > 0 else 0.0
            self._dashboard.on_metrics(payload, seen_at=now - age)
