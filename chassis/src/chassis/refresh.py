"""Live refresh: config changes reach a running service without a restart.

config-service PUBLISHes ``{"apps": [...], "version": sha}`` on ``msa:config:refresh`` when a commit
changes configuration (``"*"`` means every app). This task, run in the app lifespan, re-fetches
on an event naming this service, builds a new settings snapshot and swaps it in with
``LiveSettings.replace`` (breakers, timeouts, log level and flags follow). When config-service is
down the service keeps its current settings and re-tries until it answers; after a lost Redis
connection it re-fetches once, since events may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from pydantic import ValidationError

from chassis.config_client import ConfigClient, ConfigUnavailable
from chassis.keys import flatten
from chassis.pubsub import subscribe_forever
from chassis.settings import LiveSettings, ServiceSettings

__all__ = ["REFRESH_CHANNEL", "Refresher", "changed_keys"]

log = logging.getLogger(__name__)

REFRESH_CHANNEL = "msa:config:refresh"
RECONNECT_MAX_S = 5.0


def changed_keys(old: ServiceSettings, new: ServiceSettings) -> list[str]:
    before, after = flatten(old.model_dump(mode="json")), flatten(new.model_dump(mode="json"))
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


class Refresher:
    """Re-fetch and swap; one instance per app, driven by ``run`` (or called directly in tests)."""

    def __init__(self, config: ConfigClient[Any], live: LiveSettings[Any]) -> None:
        self.config = config
        self.live = live
        # A refresh that failed and must be retried (also when start-up had to use the cache).
        self.pending = config.snapshot.source != "config-service"
        self.refreshes = 0

    def wants(self, payload: Any) -> bool:
        apps = payload.get("apps") if isinstance(payload, dict) else None
        return isinstance(apps, list) and ("*" in apps or self.config.service in apps)

    async def refresh(self, reason: str) -> bool:
        """Returns whether settings changed. Never raises for config-service or validation trouble."""
        try:
            environment = await asyncio.to_thread(self.config.fetch, retry=False)
        except ConfigUnavailable as exc:
            if not self.pending:
                log.warning("config refresh (%s) postponed, keeping current settings: %s", reason, exc)
            self.pending = True
            return False
        self.pending = False
        try:
            new, snapshot = self.config.build(environment, source="config-service")
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, err["loc"])) for err in exc.errors())
            log.error(
                "config version %s rejected, keeping current settings: invalid %s",
                environment.get("version"),
                fields,
            )
            return False
        changed = changed_keys(self.live.current, new)
        # version and settings swap in one step, no await between: /ops/config never shows the new
        # version with the old settings
        self.config.snapshot = snapshot
        if changed:
            self.live.replace(new)
        self.refreshes += 1
        await asyncio.to_thread(self.config.save_cache, environment)
        if not changed:
            log.info("config version %s (%s): no setting changed", snapshot.version, reason)
            return False
        log.info(
            "config version %s (%s) applied; changed keys: %s",
            snapshot.version,
            reason,
            ", ".join(changed),
        )
        return True

    async def run(self, redis_url: str) -> None:
        """Subscribe, react, reconnect; runs until cancelled."""
        retry_s = self.config.client.config_refresh_retry_s
        next_retry = time.monotonic() + retry_s

        async def subscribed(again: bool) -> None:
            # Events published before this subscription (since start-up, or while the connection
            # was lost) were missed: one re-fetch covers them.
            nonlocal next_retry
            await self.refresh("resubscribed" if again else "subscribed")
            next_retry = time.monotonic() + retry_s

        async def message(channel: str, data: bytes) -> None:
            await self._on_message(data)

        async def idle() -> None:
            nonlocal next_retry
            if self.pending and time.monotonic() >= next_retry:
                await self.refresh("retry")
                next_retry = time.monotonic() + retry_s

        await subscribe_forever(
            "config refresh",
            redis_url,
            [REFRESH_CHANNEL],
            on_message=message,
            on_subscribed=subscribed,
            on_idle=idle,
            backoff_max_s=RECONNECT_MAX_S,
        )

    async def _on_message(self, data: Any) -> None:
        try:
            payload = json.loads(data)
        except (TypeError, ValueError):
            log.warning("config refresh event ignored: not JSON")
            return
        if self.wants(payload):
            await self.refresh(f"event for version {payload.get('version')}")
