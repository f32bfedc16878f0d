"""The BFF gateways over the real topology (processes wired from docker-compose.yml, real Redis and
Zipkin): one product page is one trace whose three downstream calls overlap; reviews killed ->
degraded 200 -> breaker open -> reviews back -> half-open -> closed -> full answers; the same with
``chaos.error_rate: 1.0`` committed to a config repository (nothing killed) and reverted; one order
for one Idempotency-Key; orders 503 with Retry-After while inventory is down; mobile/web bytes.

The product page is public (no session), so its trace has no auth-service span: the trace test
checks that too.
"""

from __future__ import annotations

import json
import secrets
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from msa_testing.configrepo import ConfigRepo
from msa_testing.fixtures import Topology
from msa_testing.infra import ZipkinServer
from msa_testing.polling import wait_until

pytestmark = pytest.mark.system

PAGE = "/api/products/p-1001"
SP = "deploy/config-repo"
# Just what a product page needs (plus config-service and auth-service, which gateway-web expects).
PAGE_SERVICES = {"config-service", "auth-service", "catalog", "inventory", "reviews", "gateway-web"}


def zipkin_trace(zipkin: ZipkinServer, trace_id: str, services: set[str]) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = []

    def complete() -> bool:
        nonlocal spans
        response = httpx.get(f"{zipkin.url}/api/v2/trace/{trace_id}", timeout=5)
        if response.status_code != 200:
            return False
        spans = response.json()
        server_spans = {s["localEndpoint"]["serviceName"] for s in spans if s.get("kind") == "SERVER"}
        return services <= server_spans

    wait_until(f"trace {trace_id} with spans from {sorted(services)}", complete)
    return spans


def breaker(web_url: str, name: str) -> dict[str, Any]:
    for snapshot in httpx.get(f"{web_url}/ops/telemetry", timeout=5).json()["breakers"]:
        if snapshot["name"] == name:
            found: dict[str, Any] = snapshot
            return found
    raise AssertionError(f"no breaker {name}")


def timed_get(url: str) -> tuple[httpx.Response, float]:
    start = time.perf_counter()
    response = httpx.get(url, timeout=15)
    return response, (time.perf_counter() - start) * 1000


def state_changes(log_file: Path, name: str) -> list[str]:
    """'open -> half-open' and the like, from the breaker's state-change log events."""
    changes = []
    for line in log_file.read_text(errors="replace").splitlines():
        if line.startswith("{") and f"breaker {name}: " in line:
            message = json.loads(line)["message"]
            changes.append(message.split(": ", 1)[1])
    return changes


def web_login(client: httpx.Client) -> dict[str, str]:
    response = client.post("/auth/login", json={"username": "alice", "password": "alice-password"})
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


# ---- one trace, concurrent calls ------------------------------------------------------------------


def test_product_page_is_one_trace_with_overlapping_downstream_calls(
    topology: Topology, zipkin_server: ZipkinServer
) -> None:
    trace_id = secrets.token_hex(16)
    headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    response = httpx.get(f"{topology.url('gateway-web')}{PAGE}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["degraded"] == []

    spans = zipkin_trace(zipkin_server, trace_id, {"gateway-web", "catalog", "inventory", "reviews"})
    assert {span["traceId"] for span in spans} == {trace_id}
    services = {span["localEndpoint"]["serviceName"] for span in spans}
    assert "auth-service" not in services, "the product page is public: no session, no auth call"
    by_id = {span["id"]: span for span in spans}
    # Each downstream SERVER span hangs under a gateway-web CLIENT span: those are the calls.
    calls: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        callee = span["localEndpoint"]["serviceName"]
        if span.get("kind") == "SERVER" and callee != "gateway-web":
            client = by_id[span["parentId"]]
            assert (client["localEndpoint"]["serviceName"], client.get("kind")) == ("gateway-web", "CLIENT")
            calls.setdefault(callee, []).append(client)
    assert sorted(calls) == ["catalog", "inventory", "reviews"]
    assert len(calls["reviews"]) == 1, "one call: the latest reviews carry the rating summary"
    clients = [client for group in calls.values() for client in group]
    first_end = min(c["timestamp"] + c["duration"] for c in clients)
    last_start = max(c["timestamp"] for c in clients)
    print(
        "\ncalls (start offset, duration in ms): "
        + ", ".join(
            f"{name} +{(c['timestamp'] - min(x['timestamp'] for x in clients)) / 1000:.1f}/{c['duration'] / 1000:.1f}"
            for name, group in sorted(calls.items())
            for c in group
        )
    )
    # Concurrent, not one after another: every call started before the first one finished.
    assert last_start < first_end, "the downstream calls of one page overlap in time"


# ---- breaker: kill, open, recover -------------------------------------------------------------------


def test_reviews_killed_degrades_then_the_breaker_opens_then_recovers(
    make_topology: Callable[..., Topology],
) -> None:
    topo = make_topology(
        only=PAGE_SERVICES,
        env={"gateway-web": {"BREAKER__FAIL_MAX": "2", "BREAKER__RESET_TIMEOUT_S": "2"}},
    )
    web, name = topo.url("gateway-web"), "gateway-web->reviews"
    full, full_ms = timed_get(web + PAGE)
    assert full.status_code == 200
    assert full.json()["degraded"] == []
    assert full.json()["latest_reviews"]

    topo.stop("reviews")
    lost, lost_ms = timed_get(web + PAGE)
    assert lost.status_code == 200, lost.text
    assert lost.headers["x-degraded"] == "reviews"
    assert lost.json()["latest_reviews"] is None
    assert lost.json()["stock"] is not None
    # One page makes one reviews call: a second page reaches fail_max 2, the circuit is open.
    assert breaker(web, name)["state"] == "closed"
    assert timed_get(web + PAGE)[0].json()["degraded"] == ["reviews"]
    assert breaker(web, name)["state"] == "open"
    short_before = breaker(web, name)["counts"]["short_circuited"]
    open_ms = []
    for _ in range(5):
        answer, ms = timed_get(web + PAGE)
        assert answer.status_code == 200
        assert answer.json()["degraded"] == ["reviews"]
        open_ms.append(ms)
    assert breaker(web, name)["counts"]["short_circuited"] == short_before + 5, "no call was even tried"

    topo.start("reviews")
    healed = wait_until(
        "full answers again",
        lambda: (r := httpx.get(web + PAGE, timeout=15)).json().get("degraded") == [] and r,
        timeout_s=20,
    )
    assert healed.json()["latest_reviews"]
    assert breaker(web, name)["state"] == "closed"
    log_file = topo.log_file("gateway-web")  # its last line may still wait in the log's buffer (0.1 s)
    wait_until("three transitions logged", lambda: len(state_changes(log_file, name)) >= 3, timeout_s=5)
    changes = state_changes(log_file, name)
    assert changes[:3] == ["closed -> open", "open -> half-open", "half-open -> closed"], changes
    print(
        f"\nproduct page: full {full_ms:.0f} ms; reviews down, first {lost_ms:.0f} ms; circuit open, "
        f"median {statistics.median(open_ms):.1f} ms over {len(open_ms)}; breaker log {changes}"
    )


# ---- chaos by config --------------------------------------------------------------------------------


def commit_reviews_chaos(repo: ConfigRepo, error_rate: float) -> None:
    reviews = f"chaos:\n  error_rate: {error_rate}\n  latency_ms: 0\n"
    repo.commit(f"reviews chaos.error_rate {error_rate}", **{"reviews.yml": reviews})


def test_chaos_commit_for_reviews_degrades_pages_and_a_revert_recovers(
    make_topology: Callable[..., Topology], tmp_path: Path
) -> None:
    repo = ConfigRepo.copy_of_platform(tmp_path / "config-repo")
    repo.commit("init")
    topo = make_topology(
        only=PAGE_SERVICES,
        env={
            "config-service": {"CONFIG_REPO_URI": str(repo.root), "CONFIG_SEARCH_PATHS": SP},
            "gateway-web": {"BREAKER__FAIL_MAX": "2", "BREAKER__RESET_TIMEOUT_S": "2"},
        },
    )
    web = topo.url("gateway-web")
    reviews = topo.service("reviews").process
    assert reviews is not None
    assert httpx.get(web + PAGE, timeout=10).json()["degraded"] == []

    commit_reviews_chaos(repo, 1.0)
    start = time.monotonic()
    degraded = wait_until(
        "reviews to fail by config",
        lambda: (r := httpx.get(web + PAGE, timeout=15)).json().get("degraded") == ["reviews"] and r,
    )
    broke_s = time.monotonic() - start
    assert degraded.status_code == 200
    assert degraded.headers["x-degraded"] == "reviews"
    assert httpx.get(f"{topo.url('reviews')}/health/ready", timeout=5).status_code == 200, "still running"
    # one reviews call per page: a second failing page reaches fail_max 2
    assert httpx.get(web + PAGE, timeout=15).json()["degraded"] == ["reviews"]
    assert breaker(web, "gateway-web->reviews")["state"] == "open"

    commit_reviews_chaos(repo, 0.0)
    start = time.monotonic()
    healed = wait_until(
        "full answers after the revert",
        lambda: (r := httpx.get(web + PAGE, timeout=15)).json().get("degraded") == [] and r,
    )
    print(
        f"\nchaos commit -> degraded page in {broke_s:.1f} s; revert -> full page in {time.monotonic() - start:.1f} s"
    )
    assert healed.json()["latest_reviews"]
    assert topo.service("reviews").process is reviews, "the same reviews process: nothing was restarted"
    assert reviews.poll() is None


# ---- orders -----------------------------------------------------------------------------------------


def test_same_order_twice_with_one_idempotency_key_is_one_order(topology: Topology) -> None:
    key = uuid.uuid4().hex
    order = {"lines": [{"product_id": "p-1004", "quantity": 1}]}
    with httpx.Client(base_url=topology.url("gateway-web"), timeout=15) as web:
        csrf = web_login(web)
        first = web.post("/api/orders", json=order, headers={**csrf, "Idempotency-Key": key})
        second = web.post("/api/orders", json=order, headers={**csrf, "Idempotency-Key": key})
        listing = web.get("/api/orders", params={"size": 100}).json()
    assert first.status_code == 201, first.text
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    assert [o["id"] for o in listing["items"]].count(first.json()["id"]) == 1
    assert first.json()["lines"][0]["name"]


def test_order_while_inventory_is_down_is_503_with_retry_after(topology: Topology) -> None:
    order = {"lines": [{"product_id": "p-1005", "quantity": 1}]}
    with httpx.Client(base_url=topology.url("gateway-web"), timeout=15) as web:
        csrf = web_login(web)
        topology.stop("inventory")
        try:
            refused = web.post(
                "/api/orders", json=order, headers={**csrf, "Idempotency-Key": uuid.uuid4().hex}
            )
            page = web.get(PAGE)
        finally:
            topology.start("inventory")
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert page.status_code == 200, "the product page only loses its stock"
    assert page.json()["stock"] is None
    assert page.json()["degraded"] == ["inventory"]


# ---- bytes ------------------------------------------------------------------------------------------


def test_mobile_listing_is_at_most_40_percent_of_the_web_listing(topology: Topology) -> None:
    web = httpx.get(f"{topology.url('gateway-web')}/api/products", params={"size": 20}, timeout=10)
    mobile = httpx.get(f"{topology.url('gateway-mobile')}/m/products", params={"limit": 20}, timeout=10)
    assert web.status_code == mobile.status_code == 200
    assert [p["id"] for p in web.json()["items"]] == [p["id"] for p in mobile.json()["items"]], (
        "same products"
    )
    ratio = len(mobile.content) / len(web.content)
    print(
        f"\n20 products: web {len(web.content)} bytes, mobile {len(mobile.content)} bytes, ratio {ratio:.1%}"
    )
    assert ratio <= 0.40
