"""Pure parts of ops-dashboard: settings parsing, labels, alert rows, history."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from chassis import RollingMetrics
from ops_dashboard.alerts.service import to_alert, trace_url
from ops_dashboard.breakers import service
from ops_dashboard.breakers.repository import MetricsStore
from ops_dashboard.breakers.service import (
    ERROR_STOPS,
    RateHistory,
    StateClock,
    aggregate,
    aggregate_edge,
    error_band,
    state_label,
    traces_url,
    volume_band,
)
from ops_dashboard.settings import Settings, parse_service_urls


def snapshot(name: str, state: str = "closed", **events: int) -> dict[str, Any]:
    """One breaker as a replica publishes it, counted by the chassis' own RollingMetrics."""
    metrics = RollingMetrics()
    for event, n in events.items():
        for _ in range(n):
            metrics.record(event, 20.0 if event in ("success", "bad_request", "failure", "timeout") else None)
    return {"name": name, "state": state, **metrics.snapshot()}


def test_service_urls_parse_and_skip_blank_addresses() -> None:
    assert parse_service_urls(" catalog=http://catalog:8000/ , orders=,gateway-web=https://gw:8000") == {
        "catalog": "http://catalog:8000",
        "gateway-web": "https://gw:8000",
    }
    assert parse_service_urls("") == {}


@pytest.mark.parametrize("value", ["catalog", "=http://x", "catalog=catalog:8000"])
def test_malformed_service_urls_are_refused_at_start(value: str) -> None:
    with pytest.raises(ValidationError, match="SERVICE_URLS"):
        Settings(service_urls=value)


def test_state_labels() -> None:
    assert state_label({"closed": 3}) == "Closed"
    assert state_label({"open": 1}) == "Open"
    assert state_label({"closed": 1, "open": 2}) == "2 Open / 1 Closed"
    assert state_label({"closed": 1, "half-open": 1, "open": 1}) == "1 Open / 1 Half-open / 1 Closed"


def test_trace_links_only_for_hex_trace_ids() -> None:
    assert trace_url("http://z:9411", "ABCDEF0123456789") == "http://z:9411/zipkin/traces/abcdef0123456789"
    assert trace_url("http://z:9411", "abc") is None
    assert trace_url("http://z:9411", "javascript:alert(1)") is None
    assert trace_url("http://z:9411", None) is None


def test_alert_rows_survive_odd_events() -> None:
    row = to_alert(
        b'{"message": {"nested": 1}, "level": "error", "service": 7}', seq=3, zipkin_ui_url="http://z"
    )
    assert row["id"] == 3
    assert row["level"] == "ERROR"
    assert row["message"] == '{"nested": 1}'
    assert row["service"] == "7"
    assert to_alert(b"[1, 2]", seq=4, zipkin_ui_url="http://z")["message"] == "[1, 2]"
    long = to_alert('{"message": "' + "x" * 5000 + '"}', seq=5, zipkin_ui_url="http://z")
    assert len(long["message"]) == 2000


def test_store_rejects_what_is_not_a_report_and_keeps_the_newest() -> None:
    store = MetricsStore()
    assert not store.update({"service": "s"}, seen_at=1.0)
    assert not store.update([1], seen_at=1.0)
    assert store.update(
        {"service": "s", "replica": "r", "breakers": [{"name": "a"}, {"bad": 1}]}, seen_at=5.0
    )
    assert store.update({"service": "s", "replica": "r", "breakers": []}, seen_at=4.0)  # older: ignored
    (report,) = list(store)
    assert [b["name"] for b in report.breakers] == ["a"]
    assert store.rejected == 2
    assert store.prune(now=20.0, expire_after_s=10.0) == [report]
    assert len(store) == 0


def test_rate_history_is_bounded_and_forgets_gone_breakers() -> None:
    history = RateHistory(length=3)
    for rate in (1.0, 2.0, 3.0, 4.0):
        history.record([{"name": "a", "rate": rate}, {"name": "b", "rate": 0.0}])
    assert history.series("a") == [2.0, 3.0, 4.0]
    history.record([{"name": "a", "rate": 5.0}])
    assert history.series("b") == []


def test_aggregation_survives_reports_of_the_wrong_types() -> None:
    """One odd publisher must not stop the dashboard's tick for everybody."""
    store = MetricsStore()
    store.update(
        {
            "service": "s",
            "replica": "odd",
            "breakers": [
                {"name": "s->t", "state": None, "counts": "oops", "latency_ms": [1], "request_count": "9"},
                {
                    "name": "s->t",
                    "window_s": 0,
                    "request_count": True,
                    "counts": {"success": "x", "failure": 2.0},
                },
            ],
        },
        seen_at=0.0,
    )
    store.update(
        {
            "service": "s",
            "replica": "ok",
            "breakers": [
                {
                    "name": "s->t",
                    "state": "closed",
                    "window_s": 10,
                    "request_count": 20,
                    "counts": {"success": 20},
                }
            ],
        },
        seen_at=0.0,
    )
    (view,) = aggregate(store, now=0.5, stale_after_s=3, expire_after_s=10)
    assert view["counts"]["success"] == 20
    assert view["counts"]["failure"] == 2
    assert view["rate"] == 2.0
    assert view["states"] == {"unknown": 2, "closed": 1}
    assert view["label"] == "1 Closed / 2 Unknown"


def test_latency_is_weighted_by_calls_that_reached_the_downstream() -> None:
    """Rejected (bulkhead) and short-circuited calls have no latency: they must not weigh."""
    store = MetricsStore()
    for replica, p50, counts in (
        (
            "busy",
            10.0,
            {"success": 5, "bad_request": 5, "rejected": 100, "short_circuited": 50, "retried": 30},
        ),
        ("calm", 30.0, {"success": 10}),
    ):
        requests = sum(n for event, n in counts.items() if event != "retried")
        breaker = {"name": "s->t", "window_s": 10, "request_count": requests, "counts": counts}
        store.update(
            {"service": "s", "replica": replica, "breakers": [{**breaker, "latency_ms": {"p50": p50}}]},
            seen_at=0.0,
        )
    (view,) = aggregate(store, now=0.5, stale_after_s=3, expire_after_s=10)
    assert view["latency_ms"]["p50"] == 20.0
    assert view["request_count"] == 170
    assert view["error_percentage"] == 0.0


def test_bad_requests_sum_over_replicas_and_stay_out_of_the_error_percentage() -> None:
    store = MetricsStore()
    store.update(
        {
            "service": "gw",
            "replica": "a",
            "breakers": [snapshot("gw->cat", success=6, bad_request=4, failure=2)],
        },
        seen_at=0.0,
    )
    store.update(
        {"service": "gw", "replica": "b", "breakers": [snapshot("gw->cat", success=2, bad_request=7)]},
        seen_at=0.0,
    )
    store.update(  # an older chassis: no bad_request at all
        {"service": "gw", "replica": "c", "breakers": [{"name": "gw->cat", "counts": {"success": 3}}]},
        seen_at=0.0,
    )
    (view,) = aggregate(store, now=0.5, stale_after_s=3, expire_after_s=10)
    assert view["counts"]["bad_request"] == 11
    assert view["counts"]["success"] == 11
    assert view["error_percentage"] == round(100 * 2 / 13, 1)  # 2 failures of 13 verdicts
    assert view["request_count"] == 12 + 9  # replica c reported no request_count
    assert view["reporting_hosts"] == 3


def _wall(*breakers: tuple[str, str, dict[str, int]]) -> list[dict[str, Any]]:
    store = MetricsStore()
    for n, (name, state, events) in enumerate(breakers):
        service = name.split("->")[0]
        store.update(
            {"service": service, "replica": f"r{n}", "breakers": [snapshot(name, state, **events)]},
            seen_at=0.0,
        )
    return aggregate(store, now=0.5, stale_after_s=3, expire_after_s=10, zipkin_ui_url="http://z:9411")


def test_wall_sorts_by_error_then_volume_open_first_grouped_by_caller() -> None:
    views = _wall(
        ("web->catalog", "closed", {"success": 90, "failure": 10}),  # 10 %, 10/s
        ("web->reviews", "closed", {"success": 5, "failure": 5}),  # 50 %
        ("web->orders", "closed", {"success": 200}),  # 0 %, 20/s
        ("web->auth-service", "closed", {"success": 20}),  # 0 %, 2/s
        ("web->inventory", "open", {"short_circuited": 40}),  # open, no attempts: 0 %
        ("mobile->catalog", "closed", {"success": 3, "failure": 7}),  # 70 %
        ("mobile->reviews", "closed", {"success": 50}),
        ("orders->inventory", "closed", {"success": 9, "timeout": 1}),  # 10 %, 1/s
        ("orders->auth-service", "closed", {"success": 1}),
    )
    assert [v["name"] for v in views] == [
        # web ranks first: its open circuit is the worst card; then error %, then volume
        "web->inventory",
        "web->reviews",
        "web->catalog",
        "web->orders",
        "web->auth-service",
        "mobile->catalog",
        "mobile->reviews",
        "orders->inventory",
        "orders->auth-service",
    ]
    # grouped: each caller's cards are consecutive, named by their callee
    callers = [v["service"] for v in views]
    assert callers == sorted(callers, key=callers.index)
    assert [v["callee"] for v in views[:2]] == ["inventory", "reviews"]


def test_equal_errors_rank_by_volume_then_name() -> None:
    views = _wall(
        ("s->b", "closed", {"success": 10}),
        ("s->a", "closed", {"success": 10}),
        ("s->c", "closed", {"success": 30}),
    )
    assert [v["name"] for v in views] == ["s->c", "s->a", "s->b"]


def test_jitter_inside_a_band_moves_no_card_crossing_one_does() -> None:
    """12 % and 20 % errors share a colour band, 5/s and 6/s a volume band: ranked by name."""
    calm = _wall(
        ("s->b", "closed", {"success": 88, "failure": 12}),  # 12 %, 10/s
        ("s->a", "closed", {"success": 80, "failure": 20}),  # 20 %, 10/s
        ("s->d", "closed", {"success": 60}),  # 0 %, 6/s
        ("s->c", "closed", {"success": 50}),  # 0 %, 5/s
    )
    assert [v["name"] for v in calm] == ["s->a", "s->b", "s->c", "s->d"]
    crossed = _wall(
        ("s->b", "closed", {"success": 70, "failure": 30}),  # 30 %: orange, past a's yellow
        ("s->a", "closed", {"success": 80, "failure": 20}),
        ("s->d", "closed", {"success": 160}),  # 16/s: two doublings past c's 5/s
        ("s->c", "closed", {"success": 50}),
    )
    assert [v["name"] for v in crossed] == ["s->b", "s->a", "s->d", "s->c"]


def test_the_error_bands_are_the_walls_colour_stops() -> None:
    script = (Path(service.__file__).parent.parent / "static" / "dashboard.js").read_text()
    stops = re.search(r"const STOPS = \[(.*)\];", script)
    assert stops is not None
    assert tuple(int(n) for n in re.findall(r"\[(\d+), \[", stops.group(1))) == ERROR_STOPS
    assert [error_band(p) for p in (0, 9.9, 10, 24.9, 25, 40, 49.9, 50, 100)] == [0, 0, 1, 1, 2, 3, 3, 4, 4]
    assert [volume_band(r) for r in (0, 0.9, 1, 2.9, 3, 7, 400)] == [0, 0, 1, 1, 2, 3, 8]


def test_cards_link_to_the_callees_traces_in_zipkin() -> None:
    (view,) = _wall(("gateway-web->catalog", "closed", {"success": 1}))
    assert view["traces_url"] == "http://z:9411/zipkin/?serviceName=catalog&lookback=15m&limit=10"
    assert traces_url("http://z", "auth-service/login") == (
        "http://z/zipkin/?serviceName=auth-service&lookback=15m&limit=10"
    )
    assert traces_url("http://z", "a&b=c") == "http://z/zipkin/?serviceName=a%26b%3Dc&lookback=15m&limit=10"
    store = MetricsStore()
    store.update({"service": "s", "replica": "r", "breakers": [snapshot("s->t")]}, seen_at=0.0)
    assert aggregate(store, now=0.5, stale_after_s=3, expire_after_s=10)[0]["traces_url"] is None


def test_state_clock_dates_changes_it_sees_and_bounds_the_rest() -> None:
    clock = StateClock()

    def tick(now: float, **states: str) -> dict[str, dict[str, Any]]:
        views = [{"name": name, "state": state} for name, state in states.items()]
        clock.record(views, now=now)
        return {v["name"]: v for v in views}

    seen = tick(100.0, a="closed", b="open")
    assert seen["a"]["state_age_s"] == 0.0
    assert seen["a"]["state_age_is_lower_bound"]  # already closed when first seen: since unknown
    seen = tick(112.0, a="closed", b="open")
    assert (seen["a"]["state_age_s"], seen["a"]["state_age_is_lower_bound"]) == (12.0, True)
    seen = tick(113.0, a="mixed", b="open")  # replicas disagree for a moment: a change too
    assert (seen["a"]["state_age_s"], seen["a"]["state_age_is_lower_bound"]) == (0.0, False)
    seen = tick(114.0, a="open", b="closed")
    assert (seen["a"]["state_age_s"], seen["a"]["state_age_is_lower_bound"]) == (0.0, False)
    assert (seen["b"]["state_age_s"], seen["b"]["state_age_is_lower_bound"]) == (0.0, False)
    seen = tick(126.5, a="open")  # b gone: forgotten
    assert (seen["a"]["state_age_s"], seen["a"]["state_age_is_lower_bound"]) == (12.5, False)
    seen = tick(127.0, a="open", b="closed")
    assert seen["b"]["state_age_is_lower_bound"]  # back after being forgotten: since unknown again


def test_edge_counts_sum_fresh_replicas_and_fade_with_silent_ones() -> None:
    store = MetricsStore()
    edge = {"window_s": 10, "counts": {"rate_limited": 2, "shed": 1, "deadline_exceeded": 0}}
    store.update({"service": "gw", "replica": "fresh", "breakers": [], "edge": edge}, seen_at=9.0)
    store.update({"service": "gw", "replica": "silent", "breakers": [], "edge": edge}, seen_at=0.0)
    store.update({"service": "gw", "replica": "old", "breakers": []}, seen_at=9.0)  # an older chassis
    store.update({"service": "odd", "replica": "o", "breakers": [], "edge": {"counts": "x"}}, seen_at=9.0)
    store.update({"service": "bad", "replica": "b", "breakers": [], "edge": [1]}, seen_at=9.0)
    gw, odd = aggregate_edge(store, now=10.0, stale_after_s=3, expire_after_s=20)
    assert gw == {
        "service": "gw",
        "window_s": 10,
        "counts": {"rate_limited": 2, "shed": 1, "deadline_exceeded": 0},  # the silent one left out
        "reporting_hosts": 1,
        "stale_hosts": 1,
        "freshness": 1.0,
    }
    assert odd["counts"] == {"rate_limited": 0, "shed": 0, "deadline_exceeded": 0}
    assert odd["window_s"] == 10
    # Every replica silent: the last numbers, fading.
    gw, _ = aggregate_edge(store, now=15.5, stale_after_s=3, expire_after_s=20)
    assert gw["counts"]["rate_limited"] == 4
    assert gw["reporting_hosts"] == 0
    assert 0 < gw["freshness"] < 1
