"""Faults done to the running containers the way an operator or the network would do them, and
the platform degrading and recovering. (`docker compose stop reviews` is the README's own
"Break something" block: tests/containers/test_readme_walkthrough.py.)

- `docker compose pause inventory`: a hang, not a refusal. Pages still answer within the BFF
  budget, marked degraded; the breaker opens; after `unpause` it closes and pages are whole.
- `docker network disconnect` of catalog (required for a page): 503 problem+json with
  Retry-After, fast once the breaker is open; reconnected, pages come back.
- `docker compose kill redis`: browsing stays 200, login answers 503; Redis back, login works.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx

from msa_testing.containers import ONE_SHOT, ComposeStack
from msa_testing.polling import wait_until

PAGE = "/api/products/p-1001"
BUDGET_S = 2.0  # gateway-web's bff.budget_s in deploy/config-repo/gateway-web.yml
# A 2-core CI machine running the whole stack, pytest and the JVMs stretches an event loop's
# timers now and then; a hang would take far longer than this.
SLACK_S = 1.0


def _page(stack: ComposeStack) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = httpx.get(f"{stack.url('gateway-web')}{PAGE}", timeout=10)
    return answer, time.monotonic() - started


def _breaker(stack: ComposeStack, name: str) -> dict[str, Any]:
    breakers = httpx.get(f"{stack.url('gateway-web')}/ops/telemetry", timeout=5).json()["breakers"]
    (found,) = [b for b in breakers if b["name"] == name]
    return dict(found)


def _everything_healthy(stack: ComposeStack) -> None:
    stack.wait_healthy([s for s in stack.services if s not in ONE_SHOT], timeout_s=120)


def _whole_pages(stack: ComposeStack) -> None:
    wait_until(
        "whole product pages again",
        lambda: (lambda r: r[0].status_code == 200 and r[0].json()["degraded"] == [])(_page(stack)),
        timeout_s=60,
        every_s=0.5,
    )


@contextmanager
def _restoring(stack: ComposeStack, undo: list[str]) -> Iterator[None]:
    try:
        yield
    finally:
        stack.compose(*undo, check=False)
        _everything_healthy(stack)


def test_a_hanging_inventory_costs_a_page_its_stock_never_the_budget(stack: ComposeStack) -> None:
    _whole_pages(stack)
    with _restoring(stack, ["unpause", "inventory"]):
        stack.compose("pause", "inventory")
        took_s = []
        for _ in range(6):  # the late calls time out in the background and reach the breaker
            answer, took = _page(stack)
            assert answer.status_code == 200
            assert answer.json()["degraded"] == ["inventory"]
            took_s.append(took)
        assert max(took_s) < BUDGET_S + SLACK_S, f"pages took {took_s} s with inventory hanging"
        assert statistics.median(took_s) < BUDGET_S, took_s
        wait_until(
            "gateway-web->inventory open",
            lambda: _breaker(stack, "gateway-web->inventory")["state"] == "open",
            timeout_s=15,
        )
        answer, took = _page(stack)
        assert answer.json()["degraded"] == ["inventory"]
        assert took < 0.5, f"an open breaker short-circuits, yet the page took {took:.2f} s"
    # Unpaused: after the reset timeout a trial call closes the breaker.
    _whole_pages(stack)
    assert _breaker(stack, "gateway-web->inventory")["state"] == "closed"


def test_catalog_cut_off_the_network_is_a_fast_503_then_recovers(stack: ComposeStack) -> None:
    _whole_pages(stack)
    (catalog,) = stack.containers("catalog")
    network = f"{stack.project}_default"
    aliases = stack.inspect(catalog.name)["NetworkSettings"]["Networks"][network]["Aliases"] or []
    # Reconnected by hand, a container gets its compose DNS name back only as an explicit alias.
    reconnect = ["network", "connect", *(f"--alias={a}" for a in aliases), network, catalog.name]
    stack.docker("network", "disconnect", network, catalog.name)
    try:
        for _ in range(6):
            answer, took = _page(stack)
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert int(answer.headers["Retry-After"]) >= 1
            assert took < BUDGET_S + SLACK_S
        wait_until(
            "gateway-web->catalog open",
            lambda: _breaker(stack, "gateway-web->catalog")["state"] == "open",
            timeout_s=15,
        )
        answer, took = _page(stack)
        assert answer.status_code == 503
        assert took < 0.5, f"open breaker, yet the 503 took {took:.2f} s"
    finally:
        stack.docker(*reconnect)
    _whole_pages(stack)
    _everything_healthy(stack)


def _login(stack: ComposeStack) -> httpx.Response:
    return httpx.post(
        f"{stack.url('gateway-web')}/auth/login",
        json={"username": "alice", "password": "alice-password"},
        timeout=10,
    )


def test_redis_killed_browsing_goes_on_login_is_503_then_recovers(stack: ComposeStack) -> None:
    assert _login(stack).status_code == 200
    with _restoring(stack, ["start", "redis"]):
        stack.compose("kill", "redis")
        for _ in range(3):
            answer, took = _page(stack)
            assert answer.status_code == 200, answer.text
            assert took < BUDGET_S + SLACK_S
        login = _login(stack)
        assert login.status_code == 503, login.text
        assert login.headers["content-type"].startswith("application/problem+json")
        assert "Retry-After" in login.headers
    # Redis is back (empty: it keeps nothing on disk): logins work again.
    wait_until("login with Redis back", lambda: _login(stack).status_code == 200, timeout_s=60, every_s=1)
    # ...all of them: the connections the old Redis closed are reopened on their next use, so a
    # burst (more connections than one login took) is not answered 503 (chassis.redis_clients)
    with ThreadPoolExecutor(4) as pool:
        burst = list(pool.map(lambda _: _login(stack), range(4)))
    assert [answer.status_code for answer in burst] == [200] * 4, [answer.text for answer in burst]
    _whole_pages(stack)
