"""The last N alerts, in memory: enough for an operator who opens the page after the fact."""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["AlertStore"]


class AlertStore:
    def __init__(self, keep: int) -> None:
        self._alerts: deque[dict[str, Any]] = deque(maxlen=keep)
        self._seq = 0
        self.received = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add(self, alert: dict[str, Any]) -> None:
        self._alerts.append(alert)
        self.received += 1

    def newest_first(self) -> list[dict[str, Any]]:
        return list(reversed(self._alerts))
