"""The dashboard's state: breaker reports, edge counts, rate history, alerts, service health and
Redis status, turned into one ``state`` event per tick for every page."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ops_dashboard.alerts.repository import AlertStore
from ops_dashboard.alerts.service import to_alert
from ops_dashboard.breakers.repository import MetricsStore
from ops_dashboard.breakers.service import RateHistory, StateClock, aggregate, aggregate_edge
from ops_dashboard.live.hub import Hub, sse_frame
from ops_dashboard.peers.service import HealthPoller
from ops_dashboard.settings import Settings

__all__ = ["Dashboard", "RedisStatus"]

log = logging.getLogger(__name__)


@dataclass
class RedisStatus:
    status: str = "connecting"  # connecting | up | down
    since: str | None = None
    error: str | None = None

    def set(self, status: str, error: str | None = None) -> bool:
        """Returns True when the status changed."""
        changed = status != self.status
        if changed:
            self.since = datetime.now(UTC).isoformat(timespec="seconds")
        self.status, self.error = status, error
        return changed


@dataclass
class Dashboard:
    settings: Settings
    poller: HealthPoller
    store: MetricsStore = field(default_factory=MetricsStore)
    hub: Hub = field(default_factory=Hub)
    redis: RedisStatus = field(default_factory=RedisStatus)
    alerts: AlertStore = field(init=False)
    history: RateHistory = field(init=False)
    state_clock: StateClock = field(default_factory=StateClock)
    last_tick_ms: float = 0.0
    tick_times_ms: deque[float] = field(default_factory=lambda: deque(maxlen=600))  # for the benchmark
    _views: list[dict[str, Any]] = field(default_factory=list)
    _edge: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.alerts = AlertStore(self.settings.alerts_keep)
        self.history = RateHistory(max(1, round(self.settings.history_s / self.settings.tick_s)))

    # ---- inputs --------------------------------------------------------------------------------
    def on_metrics(self, payload: Any, *, seen_at: float | None = None) -> None:
        self.store.update(payload, seen_at=time.monotonic() if seen_at is None else seen_at)

    def on_alert(self, raw: bytes | str) -> dict[str, Any]:
        alert = to_alert(raw, seq=self.alerts.next_seq(), zipkin_ui_url=self.settings.zipkin_ui_url)
        self.alerts.add(alert)
        self.hub.publish(sse_frame("alert", alert))
        return alert

    # ---- output --------------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        """Aggregate, remember the rates, and send the state to every page."""
        started = time.perf_counter()
        now = time.monotonic() if now is None else now
        s = self.settings
        self.store.prune(now=now, expire_after_s=s.expire_after_s)
        self._views = aggregate(
            self.store,
            now=now,
            stale_after_s=s.stale_after_s,
            expire_after_s=s.expire_after_s,
            zipkin_ui_url=s.zipkin_ui_url,
        )
        self.state_clock.record(self._views, now=now)
        self._edge = aggregate_edge(
            self.store, now=now, stale_after_s=s.stale_after_s, expire_after_s=s.expire_after_s
        )
        self.history.record(self._views)
        frame = sse_frame("state", self.state(full=False))
        self.last_tick_ms = (time.perf_counter() - started) * 1000
        self.tick_times_ms.append(self.last_tick_ms)
        self.hub.publish(frame)

    def state(self, *, full: bool) -> dict[str, Any]:
        """``full`` adds each breaker's rate history (for a page that just connected)."""
        breakers = (
            [{**view, "history": self.history.series(view["name"])} for view in self._views]
            if full
            else self._views
        )
        s = self.settings
        return {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "full": full,
            "redis": {"status": self.redis.status, "since": self.redis.since, "error": self.redis.error},
            "breakers": breakers,
            "edge": self._edge,
            "services": self.poller.snapshot(),
            "config": {
                "stale_after_s": s.stale_after_s,
                "expire_after_s": s.expire_after_s,
                "history_points": self.history.length,
                "tick_s": s.tick_s,
            },
            "tick_ms": round(self.last_tick_ms, 2),
        }

    async def run_ticker(self) -> None:
        interval = self.settings.tick_s
        next_at = time.monotonic()
        while True:
            try:
                self.tick()
            except Exception:  # a bad report must not stop the dashboard
                log.exception("dashboard tick failed")
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if time.monotonic() - next_at > interval:  # fell behind (suspended): do not burst
                next_at = time.monotonic()
