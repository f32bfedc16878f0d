"""Pure parts of ops-dashboard: settings parsing, labels, alert rows, history."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ops_dashboard.alerts.service import to_alert, trace_url
from ops_dashboard.breakers.repository import MetricsStore
from ops_dashboard.breakers.service import RateHistory, aggregate, aggregate_edge, state_label
from ops_dashboard.settings import Settings, parse_service_urls


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
        ("busy", 10.0, {"success": 10, "rejected": 100, "short_circuited": 50, "retried": 30}),
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
