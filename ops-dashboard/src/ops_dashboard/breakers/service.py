"""Turbine's job: combine every replica's report into one view per breaker.

Sums for counts and rates, states counted per replica (replicas can disagree for a moment: the
state is shared through Redis but read at different times), error percentage recomputed from
the summed counts the Hystrix way (short-circuited and bulkhead-rejected calls excluded). A
replica silent for longer than ``stale_after_s`` fades out: it stops counting while any replica
is fresh, and when none is, the last numbers are shown with ``freshness`` going from 1 to 0 until
the replica is dropped. ``aggregate_edge`` does the same per service for the requests its
replicas refused at once (``edge``: rate limited, shed, past their deadline).

The views come in the wall's order (``wall_order``) and ``StateClock`` says how long each breaker
has been in its state.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from chassis import RollingMetrics
from chassis.app import EDGE_EVENTS
from ops_dashboard.breakers.repository import ReplicaReport

__all__ = [
    "EDGE_EVENTS",
    "ERROR_STOPS",
    "EVENTS",
    "RateHistory",
    "StateClock",
    "aggregate",
    "aggregate_edge",
    "error_band",
    "state_label",
    "traces_url",
    "volume_band",
    "wall_order",
]

# As the chassis counts them; an event a replica does not report (an older chassis) counts 0.
EVENTS = RollingMetrics.EVENTS
PERCENTILES = ("p50", "p90", "p99")
# Label order when replicas disagree: the alarming state first.
_STATE_ORDER = ("open", "half-open", "closed")
_STATE_NAMES = {"open": "Open", "half-open": "Half-open", "closed": "Closed"}
_ALARMING = frozenset({"open", "half-open", "mixed"})  # first on the wall
ERROR_STOPS = (10, 25, 40, 50)  # error %: the colour stops of the wall (dashboard.js STOPS)
# Calls that reached the downstream and so have a latency (chassis.http).
_ANSWERED = ("success", "bad_request", "failure", "timeout")
# The Zipkin search a card links to: Lens runs it only with lookback, endTs and limit in the URL;
# the page adds endTs when the link is followed (the moment of the click, not of the render).
TRACES_LOOKBACK = "15m"
TRACES_LIMIT = 10

# One replica's part of a view: its report, the part of it aggregated, its age in seconds.
Member = tuple[ReplicaReport, Mapping[str, Any], float]


def aggregate(
    reports: Iterable[ReplicaReport],
    *,
    now: float,
    stale_after_s: float,
    expire_after_s: float,
    zipkin_ui_url: str | None = None,
) -> list[dict[str, Any]]:
    """One view per breaker name, in ``wall_order``; each links to its callee's traces in Zipkin
    when ``zipkin_ui_url`` is given."""
    groups: dict[str, list[Member]] = {}
    for report in reports:
        age = now - report.seen_at
        if age > expire_after_s:
            continue
        for breaker in report.breakers:
            groups.setdefault(breaker["name"], []).append((report, breaker, age))
    views = [
        _combine(name, members, stale_after_s=stale_after_s, expire_after_s=expire_after_s)
        for name, members in groups.items()
    ]
    for view in views:
        view["traces_url"] = traces_url(zipkin_ui_url, view["callee"]) if zipkin_ui_url else None
    return wall_order(views)


def wall_order(views: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hystrix's "error then volume", with circuits that are not closed first (an open circuit
    that short-circuits every call has no attempts, hence 0 % errors, and must not sink), then by
    name; grouped by caller, each group where its first card ranks (the worst group first).
    Error % and volume rank by band (``error_band``, ``volume_band``), not by value: Hystrix's
    exact sort moves cards on every tick as traffic jitters; a card here moves when it changes
    colour band or its rate doubles or halves."""
    ranked = sorted(
        views,
        key=lambda v: (
            v["state"] not in _ALARMING,
            -error_band(v["error_percentage"]),
            -volume_band(v["rate"]),
            v["name"],
        ),
    )
    group_rank: dict[str, int] = {}
    for n, view in enumerate(ranked):
        group_rank.setdefault(view["service"], n)
    return sorted(ranked, key=lambda v: group_rank[v["service"]])  # stable: keeps the rank inside


def error_band(error_percentage: float) -> int:
    """0-4: the colour stops of the wall's legend (green below 10 %, then 25, 40, 50 %) it reached."""
    return sum(error_percentage >= stop for stop in ERROR_STOPS)


def volume_band(rate: float) -> int:
    """0 below 1 request/s, then one more each time the rate doubles (1, 3, 7, 15, ... /s)."""
    return int(math.log2(1 + max(rate, 0.0)))


def traces_url(zipkin_ui_url: str, callee: str) -> str:
    """Zipkin Lens' search for the callee's own spans (``serviceName``: every request it served).
    Not ``remoteServiceName`` of the caller's spans: the OpenTelemetry Zipkin exporter sets no
    remote endpoint. ``<callee>/<purpose>`` breakers (``Downstream.with_breaker``) search the callee."""
    service = callee.split("/", 1)[0]
    query = urlencode({"serviceName": service, "lookback": TRACES_LOOKBACK, "limit": TRACES_LIMIT})
    return f"{zipkin_ui_url}/zipkin/?{query}"


def aggregate_edge(
    reports: Iterable[ReplicaReport], *, now: float, stale_after_s: float, expire_after_s: float
) -> list[dict[str, Any]]:
    """Per service that reports them, the requests its replicas refused at once, summed; sorted by
    service. Replicas that report no ``edge`` (an older chassis) are left out."""
    groups: dict[str, list[Member]] = {}
    for report in reports:
        age = now - report.seen_at
        if report.edge is not None and age <= expire_after_s:
            groups.setdefault(report.service, []).append((report, report.edge, age))
    views = []
    for service, members in sorted(groups.items()):
        fresh, stale, freshness = _split(members, stale_after_s=stale_after_s, expire_after_s=expire_after_s)
        counts = dict.fromkeys(EDGE_EVENTS, 0)
        for _, edge, _ in fresh or stale:
            replica_counts = _mapping(edge.get("counts"))
            for event in EDGE_EVENTS:
                counts[event] += _int(replica_counts.get(event))
        views.append(
            {
                "service": service,
                "window_s": max(_int(edge.get("window_s")) for _, edge, _ in members) or 10,
                "counts": counts,
                "reporting_hosts": len(fresh),
                "stale_hosts": len(stale),
                "freshness": round(freshness, 3),
            }
        )
    return views


def _split(
    members: list[Member], *, stale_after_s: float, expire_after_s: float
) -> tuple[list[Member], list[Member], float]:
    """The fresh and the stale members, and the freshness of the view: 1 while any member is
    fresh, else going from 1 to 0 as the youngest stale one nears ``expire_after_s``."""
    fresh = [m for m in members if m[2] <= stale_after_s]
    stale = [m for m in members if m[2] > stale_after_s]
    if fresh:
        return fresh, stale, 1.0
    youngest = min(age for _, _, age in stale)
    fading_s = max(expire_after_s - stale_after_s, 1e-9)
    return fresh, stale, max(0.0, 1.0 - (youngest - stale_after_s) / fading_s)


def _combine(
    name: str, members: list[Member], *, stale_after_s: float, expire_after_s: float
) -> dict[str, Any]:
    fresh, stale, freshness = _split(members, stale_after_s=stale_after_s, expire_after_s=expire_after_s)
    counted = fresh or stale

    counts = dict.fromkeys(EVENTS, 0)
    request_count = 0
    rate = 0.0
    states: Counter[str] = Counter()
    weighted: dict[str, float] = dict.fromkeys(PERCENTILES, 0.0)
    weights: dict[str, float] = dict.fromkeys(PERCENTILES, 0.0)
    for _, breaker, _ in counted:
        replica_counts = _mapping(breaker.get("counts"))
        for event in EVENTS:
            counts[event] += _int(replica_counts.get(event))
        replica_requests = _int(breaker.get("request_count"))
        request_count += replica_requests
        rate += _rate(breaker)
        states[_state(breaker)] += 1
        # Percentiles cannot be summed: Turbine's request-weighted mean is a fair approximation,
        # weighted by the calls that have a latency (not short-circuited, rejected or retried).
        latency = _mapping(breaker.get("latency_ms"))
        weight = max(sum(_int(replica_counts.get(e)) for e in _ANSWERED), 1)
        for p in PERCENTILES:
            value = latency.get(p)
            if isinstance(value, int | float) and not isinstance(value, bool):
                weighted[p] += value * weight
                weights[p] += weight
    # As the chassis computes it (RollingMetrics.snapshot): bad requests are no verdict on the callee.
    errors = counts["failure"] + counts["timeout"]
    attempts = counts["success"] + errors
    service = counted[0][0].service
    callee = name.split("->", 1)[1] if "->" in name else ""
    return {
        "name": name,
        "service": service,
        "callee": callee,
        "state": next(iter(states)) if len(states) == 1 else "mixed",
        "states": dict(states),
        "label": state_label(states),
        "reporting_hosts": len(fresh),
        "stale_hosts": len(stale),
        "freshness": round(freshness, 3),
        "rate": round(rate, 3),
        "request_count": request_count,
        "error_percentage": round(100.0 * errors / attempts, 1) if attempts else 0.0,
        "counts": counts,
        "latency_ms": {p: round(weighted[p] / weights[p], 2) if weights[p] else None for p in PERCENTILES},
        "replicas": sorted(
            (
                {
                    "replica": report.replica,
                    "state": _state(breaker),
                    "rate": round(_rate(breaker), 3),
                    "error_percentage": _float(breaker.get("error_percentage")),
                    "age_s": round(age, 1),
                    "stale": age > stale_after_s,
                }
                for report, breaker, age in members
            ),
            key=lambda r: str(r["replica"]),
        ),
    }


def state_label(states: Mapping[str, int]) -> str:
    """``Closed`` when all agree, ``2 Open / 1 Closed`` when replicas disagree."""
    present = [s for s in _STATE_ORDER if states.get(s)] + sorted(s for s in states if s not in _STATE_ORDER)
    if len(present) == 1:
        return _STATE_NAMES.get(present[0], present[0].capitalize())
    return " / ".join(f"{states[s]} {_STATE_NAMES.get(s, s.capitalize())}" for s in present)


def _state(breaker: Mapping[str, Any]) -> str:
    return str(breaker.get("state") or "unknown").lower()


def _rate(breaker: Mapping[str, Any]) -> float:
    window = _float(breaker.get("window_s")) or 10.0
    return _int(breaker.get("request_count")) / window


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _float(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class RateHistory:
    """The last ``length`` rates of every breaker, one per tick (the sparkline)."""

    def __init__(self, length: int) -> None:
        self.length = length
        self._series: dict[str, deque[float]] = {}

    def record(self, views: Iterable[Mapping[str, Any]]) -> None:
        names = set()
        for view in views:
            name = view["name"]
            names.add(name)
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = deque(maxlen=self.length)
            series.append(view["rate"])
        for gone in self._series.keys() - names:
            del self._series[gone]

    def series(self, name: str) -> list[float]:
        return list(self._series.get(name, ()))


class StateClock:
    """How long each breaker has been in its state (the card's "Open 12s").

    The source is this dashboard seeing the aggregated state change from one tick to the next: it
    sees every replica's state once a second anyway, needs no change to what replicas publish and
    reads one clock (no skew between hosts). Its limits, shown as they are: a change is dated to
    within a publish interval plus a tick (about 2 s), and a state the breaker was already in when
    the dashboard first saw it (after a restart) has no known start, so its age is a lower bound.
    """

    def __init__(self) -> None:
        self._since: dict[str, tuple[str, float, bool]] = {}  # name -> (state, since, start seen)

    def record(self, views: Iterable[dict[str, Any]], *, now: float) -> None:
        """Note changes and set ``state_age_s`` and ``state_age_is_lower_bound`` on every view."""
        names = set()
        for view in views:
            name, state = view["name"], view["state"]
            names.add(name)
            known = self._since.get(name)
            if known is None:
                known = self._since[name] = (state, now, False)
            elif known[0] != state:
                known = self._since[name] = (state, now, True)
            view["state_age_s"] = round(now - known[1], 1)
            view["state_age_is_lower_bound"] = not known[2]
        for gone in self._since.keys() - names:
            del self._since[gone]
