"""The services panel: ``/health/ready`` of every service the dashboard was told about
(``SERVICE_URLS``) or, by default, of every service in the registry (``chassis.registry``): each
round asks the registry first, so a new service appears, and one not heard of for
``registry_max_age_s`` leaves; a stopped one stays, shown unreachable, until then.

Probes use a plain HTTP client, not a chassis ``Downstream``: a breaker would hide the very
recovery this panel exists to show, and probe traffic would appear as a breaker of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

__all__ = ["HealthPoller"]

log = logging.getLogger(__name__)


Discover = Callable[[], Awaitable[dict[str, str]]]


class HealthPoller:
    def __init__(
        self,
        targets: dict[str, str],
        client: httpx.AsyncClient,  # noqa: TID251
        discover: Discover | None = None,
    ) -> None:
        self._client = client
        self._discover = discover
        self.targets: dict[str, str] = {}
        self._status: dict[str, dict[str, Any]] = {}
        self._set_targets(targets)

    def _set_targets(self, targets: dict[str, str]) -> None:
        for name in set(self._status) - set(targets):
            del self._status[name]
        for name, url in targets.items():
            known = self._status.get(name)
            if known is None or known["url"] != url:
                self._status[name] = {
                    "name": name, "url": url, "status": "unknown", "since": None, "checked_at": None
                }  # fmt: skip
        self.targets = dict(targets)

    def snapshot(self) -> list[dict[str, Any]]:
        return [dict(self._status[name]) for name in sorted(self._status)]

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:  # the panel goes on with the next round
                log.exception("health polling failed")
            await asyncio.sleep(interval_s)

    async def poll_once(self) -> None:
        if self._discover is not None:
            try:
                self._set_targets(await self._discover())
            except Exception as exc:  # Redis down: keep polling the services known so far
                log.warning(
                    "service registry unreadable (%s): polling the known services", type(exc).__name__
                )
        names = list(self.targets)
        results = await asyncio.gather(*(self._probe(self.targets[n]) for n in names))
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for name, result in zip(names, results, strict=True):
            entry = self._status[name]
            if entry["status"] != result["status"] or entry["since"] is None:
                result["since"] = now
            else:
                result["since"] = entry["since"]
            entry.update(result, checked_at=now)

    async def _probe(self, url: str) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            response = await self._client.get(f"{url}/health/ready")
        except httpx.HTTPError as exc:
            return {"status": "unreachable", "error": type(exc).__name__, "checks": {}, "latency_ms": None}
        latency = round((time.perf_counter() - start) * 1000, 1)
        checks: dict[str, str] = {}
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("checks"), dict):
            checks = {
                str(k): str(v.get("status")) if isinstance(v, dict) else str(v)
                for k, v in body["checks"].items()
            }
        status = "up" if response.status_code == 200 else "down"
        error = None if status == "up" else f"HTTP {response.status_code}"
        return {"status": status, "error": error, "checks": checks, "latency_ms": latency}
