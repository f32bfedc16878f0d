"""The latest metrics report of every (service, replica), with the moment it was last heard of."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MetricsStore", "ReplicaReport"]


@dataclass(frozen=True, slots=True)
class ReplicaReport:
    service: str
    replica: str
    breakers: tuple[Mapping[str, Any], ...]
    seen_at: float  # monotonic seconds
    edge: Mapping[str, Any] | None = None  # requests refused at once; None: a replica older than that


class MetricsStore:
    """One report per replica; a newer report replaces the older one whole."""

    def __init__(self) -> None:
        self._reports: dict[tuple[str, str], ReplicaReport] = {}
        self.rejected = 0  # payloads that were not the chassis' shape

    def update(self, payload: Any, *, seen_at: float) -> bool:
        """Keep ``payload`` (the chassis' JSON) if it is well formed; an older one never wins."""
        report = _parse(payload, seen_at)
        if report is None:
            self.rejected += 1
            return False
        key = (report.service, report.replica)
        current = self._reports.get(key)
        if current is None or current.seen_at <= seen_at:
            self._reports[key] = report
        return True

    def prune(self, *, now: float, expire_after_s: float) -> list[ReplicaReport]:
        """Forget replicas silent for longer than ``expire_after_s``; returns what was dropped."""
        dropped = [r for r in self._reports.values() if now - r.seen_at > expire_after_s]
        for report in dropped:
            del self._reports[(report.service, report.replica)]
        return dropped

    def clear(self) -> None:
        self._reports.clear()

    def __iter__(self) -> Iterator[ReplicaReport]:
        return iter(list(self._reports.values()))

    def __len__(self) -> int:
        return len(self._reports)


def _parse(payload: Any, seen_at: float) -> ReplicaReport | None:
    if not isinstance(payload, Mapping):
        return None
    service, replica, breakers = payload.get("service"), payload.get("replica"), payload.get("breakers")
    if not isinstance(service, str) or not isinstance(replica, str) or not isinstance(breakers, list):
        return None
    valid = tuple(b for b in breakers if isinstance(b, Mapping) and isinstance(b.get("name"), str))
    edge = payload.get("edge")
    return ReplicaReport(
        service=service,
        replica=replica,
        breakers=valid,
        seen_at=seen_at,
        edge=edge if isinstance(edge, Mapping) else None,
    )
