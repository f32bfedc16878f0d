"""The ops dashboard in a real browser against a running topology (catalog, gateway-web,
ops-dashboard, redis-server as real processes): traffic makes the gateway's breaker circle appear,
stopping catalog turns it red and Open, starting catalog turns it back, and an error log event
published on the alerts channel shows up with its Zipkin link. Screenshot: test-artifacts/dashboard.png.
Reports of two replicas, built by the chassis' own counters, show their summed rejected and retried
calls and edge refusals (test-artifacts/dashboard-edge.png). Reports of 52 breakers from 2-3 replicas
per caller make the wall: grouped by caller, sorted, summed, linked to Zipkin, with the time since
each state began (test-artifacts/dashboard-wall.png).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from chassis import RollingMetrics
from chassis.app import EDGE_EVENTS, METRICS_CHANNEL
from chassis.breakers import RollingCounts
from msa_cli.devstack import free_port
from msa_testing.browser import CHROMIUM, launched
from msa_testing.fixtures import Topology
from ops_dashboard.breakers.service import error_band, volume_band

pytestmark = [pytest.mark.system, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
BREAKER = "gateway-web->catalog"
ZIPKIN_UI = "http://127.0.0.1:9411"
GREEN, RED = "rgb(40, 167, 69)", "rgb(220, 53, 69)"

# The card of one breaker, as the page renders it; None until it exists.
CARD_JS = """
(name) => {
  const card = [...document.querySelectorAll('.breaker')].find((c) => c.dataset.name === name);
  if (!card) return null;
  return {
    state: card.dataset.state,
    label: card.querySelector('.label').textContent,
    fill: card.querySelector('.circle').getAttribute('fill'),
    r: Number(card.querySelector('.circle').getAttribute('r')),
    rate: card.querySelector('.rate').textContent,
    spark: card.querySelector('.spark-line').getAttribute('points'),
    since: card.querySelector('.since').textContent,
    traces: card.querySelector('.traces').getAttribute('href'),
    text: card.innerText,
  };
}
"""
# The whole wall as rendered: groups in order, each with its cards in order.
WALL_JS = """
() => [...document.querySelectorAll('#breakers > .group')].map((group) => ({
  caller: group.dataset.caller,
  title: group.querySelector('.group-title').textContent,
  cards: [...group.querySelectorAll('.breaker')].map((card) => {
    const t = (sel) => card.querySelector(sel).textContent;
    return {
      name: card.dataset.name, callee: t('.name'), state: card.dataset.state, label: t('.label'),
      since: t('.since'), error: t('.error'), hosts: t('.c-hosts'), traces: card.querySelector('.traces').href,
      counts: [t('.c-success'), t('.c-short'), t('.c-bad'), t('.c-timeout'), t('.c-rejected'), t('.c-failure')],
    };
  }),
}))
"""
# The edge table as rendered: one row per service.
EDGE_JS = """
() => [...document.querySelectorAll('#edge-rows tr')].map((tr) => ({
  service: tr.dataset.name,
  quiet: tr.dataset.quiet,
  cells: [...tr.children].map((td) => td.textContent),
  hot: [...tr.querySelectorAll('td.hot')].map((td) => td.className.split(' ')[0]),
}))
"""


@contextlib.asynccontextmanager
async def traffic(url: str) -> AsyncIterator[None]:
    """About 20 requests a second through the gateway until the block ends."""
    stop = asyncio.Event()

    async def loop() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=3.0) as client:
            for _ in range(20_000):  # bounded; the test ends it long before
                if stop.is_set():
                    return
                with contextlib.suppress(httpx.HTTPError):
                    await client.get("/api/products", params={"size": 3})
                await asyncio.sleep(0.05)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        stop.set()
        await task


def error_log_line(log_file: Path) -> dict[str, Any]:
    """A real log event of the gateway, as the chassis wrote it (the same JSON Logstash receives):
    an ERROR if there is one, else the 503 it logged for the catalog outage (with its trace id)."""
    events = []
    for line in log_file.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and event.get("trace_id"):
                events.append(event)
    for event in events:
        if event.get("level") in ("ERROR", "CRITICAL"):
            return event
    for event in events:
        if event.get("level") == "WARNING" and "catalog" in str(event.get("message")):
            return event
    raise AssertionError(f"no error log event with a trace id in {log_file}")


async def wait_card(
    page: Any, accept: Callable[[dict[str, Any] | None], bool], what: str, timeout_s: float
) -> dict[str, Any]:
    """Poll the rendered card (bounded) until ``accept``; on failure keep a screenshot."""
    card: dict[str, Any] | None = None
    for _ in range(int(timeout_s / 0.25)):
        card = await page.evaluate(CARD_JS, BREAKER)
        if accept(card):
            assert card is not None
            return card
        await asyncio.sleep(0.25)
    await page.screenshot(path=str(ARTIFACTS / "dashboard-failure.png"), full_page=True)
    raise AssertionError(f"{what}: not within {timeout_s}s; card: {card}")


@pytest.fixture
def chromium(require_infra: Callable[[str], None]) -> str:
    if not Path(CHROMIUM).exists() or shutil.which("redis-server") is None:
        require_infra("needs /usr/bin/chromium (Debian package chromium) and redis-server")
    return CHROMIUM


async def test_dashboard_shows_breakers_outage_recovery_and_alerts(
    make_topology: Callable[..., Topology], chromium: str
) -> None:

    topology = make_topology(
        only={"catalog", "gateway-web", "ops-dashboard"},
        env={
            "gateway-web": {"BREAKER__FAIL_MAX": "2", "BREAKER__RESET_TIMEOUT_S": "2"},
            "ops-dashboard": {"ZIPKIN_UI_URL": ZIPKIN_UI},
        },
    )
    # No SERVICE_URLS: the services panel finds catalog and gateway-web in the registry
    # (chassis.registry), at the local ports they announce.
    ARTIFACTS.mkdir(exist_ok=True)
    async with launched(chromium) as browser:
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        page_errors: list[str] = []
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        await page.goto(topology.url("ops-dashboard") + "/")
        await page.wait_for_selector('#connection[data-status="live"]', timeout=10_000)
        await page.wait_for_selector('#services li[data-name="catalog"][data-status="up"]', timeout=10_000)
        async with traffic(topology.url("gateway-web")):
            healthy = await wait_card(
                page,
                lambda c: c is not None and c["label"] == "Closed" and c["fill"] == GREEN and c["r"] > 5,
                "traffic makes a green, closed circle appear",
                timeout_s=20,
            )
            assert "/s" in healthy["rate"]
            assert "rejected " in healthy["text"]
            assert "retried " in healthy["text"]
            assert "bad req " in healthy["text"]
            assert healthy["since"].startswith("≥")  # closed when first seen: since unknown
            assert healthy["traces"] == f"{ZIPKIN_UI}/zipkin/?serviceName=catalog&lookback=15m&limit=10"
            # The gateway publishes its edge counts with its breakers: a row, zeros or not.
            await page.wait_for_selector('#edge-rows tr[data-name="gateway-web"]', timeout=10_000)

            topology.stop("catalog")
            try:
                failing = await wait_card(
                    page,
                    lambda c: (
                        c is not None and c["state"] == "open" and c["label"] == "Open" and c["fill"] == RED
                    ),
                    "catalog stopped: the circle turns red and Open",
                    timeout_s=25,
                )
                assert "failed" in failing["text"]
                assert re.fullmatch(r"\d+s", failing["since"]), "the change was seen: no lower bound"
                await page.wait_for_selector(
                    '#services li[data-name="catalog"][data-status="unreachable"]', timeout=10_000
                )

                event = error_log_line(topology.log_file("gateway-web"))
                publisher = aioredis.Redis.from_url(topology.redis_url)
                try:
                    await publisher.publish("msa:alerts", json.dumps(event))
                finally:
                    await publisher.aclose()
                link = page.locator("#alerts li a.trace-link").first
                await link.wait_for(timeout=10_000)
                assert await link.get_attribute("href") == f"{ZIPKIN_UI}/zipkin/traces/{event['trace_id']}"
                assert event["message"] in await page.locator("#alerts li").first.inner_text()
                await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            finally:
                topology.start("catalog")

            await wait_card(
                page,
                lambda c: c is not None and c["label"] == "Closed" and c["fill"] == GREEN,
                "catalog back: the circle turns green and Closed again",
                timeout_s=30,
            )
        assert page_errors == []


def metrics_payload(
    service: str,
    replica: str,
    breakers: dict[str, dict[str, int]],
    edge: dict[str, int] | None,
    states: Mapping[str, str] | None = None,
) -> str:
    """A replica's report as chassis.app._publish_metrics sends it, counted by the chassis' own
    RollingMetrics and RollingCounts (``edge`` None: a replica of an older chassis; ``states``:
    breakers not closed)."""
    snapshots = []
    for name, events in breakers.items():
        metrics = RollingMetrics()
        for event, n in events.items():
            for _ in range(n):
                answered = event in ("success", "bad_request", "failure", "timeout")
                metrics.record(event, 20.0 if answered else None)
        state = (states or {}).get(name, "closed")
        snapshots.append({"name": name, "state": state, **metrics.snapshot()})
    report: dict[str, Any] = {"service": service, "replica": replica, "breakers": snapshots}
    if edge is not None:
        counts = RollingCounts(EDGE_EVENTS)
        for event, n in edge.items():
            for _ in range(n):
                counts.record(event)
        report["edge"] = {"window_s": counts.window_s, "counts": counts.counts()}
    return json.dumps(report)


class DashboardOnOwnRedis:
    """The ops-dashboard console script with a private redis-server that the test stops and starts."""

    def __init__(self) -> None:
        self.redis_port, self.port = free_port(), free_port()
        self.redis: subprocess.Popen[bytes] | None = None
        self.dashboard: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            with contextlib.suppress(redis.ConnectionError), redis.Redis(port=self.redis_port) as client:
                client.ping()
                return
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop_redis(self) -> None:
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(10)
            self.redis = None

    def start_dashboard(self) -> None:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "ENV": "test",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "ZIPKIN_ENDPOINT": "",
            "ZIPKIN_UI_URL": ZIPKIN_UI,
            "LOG_LEVEL": "WARNING",
        }
        self.dashboard = subprocess.Popen(
            [str(Path(sys.executable).with_name("ops-dashboard"))],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with httpx.Client(timeout=2.0) as client:
            for _ in range(300):
                assert self.dashboard.poll() is None, "ops-dashboard exited"
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health/ready").status_code == 200:
                        return
                time.sleep(0.05)
        raise AssertionError("ops-dashboard not ready")

    def stop(self) -> None:
        if self.dashboard is not None:
            self.dashboard.terminate()
            self.dashboard.wait(15)
        self.stop_redis()


@pytest.fixture
def dashboard_on_own_redis(chromium: str) -> Iterator[DashboardOnOwnRedis]:
    stack = DashboardOnOwnRedis()
    try:
        stack.start_redis()
        stack.start_dashboard()
        yield stack
    finally:
        stack.stop()


async def test_page_shows_a_redis_outage_and_recovers(
    dashboard_on_own_redis: DashboardOnOwnRedis, chromium: str
) -> None:
    """Stop Redis: the page says so; start it again: the banner goes and the page is live again."""

    stack = dashboard_on_own_redis
    async with launched(chromium) as browser:
        page = await browser.new_page()
        await page.goto(stack.url + "/")
        await page.wait_for_selector('#redis[data-status="up"]', timeout=10_000)
        banner = page.locator("#banner")
        assert not await banner.is_visible()
        stack.stop_redis()
        await page.wait_for_selector('#redis[data-status="down"]', timeout=15_000)
        assert await banner.is_visible()
        assert "Redis is unreachable" in await banner.inner_text()
        stack.start_redis()
        await page.wait_for_selector('#redis[data-status="up"]', timeout=15_000)
        assert not await banner.is_visible()
        assert await page.locator("#connection").get_attribute("data-status") == "live"


async def test_page_shows_rejected_retried_and_edge_counts(
    dashboard_on_own_redis: DashboardOnOwnRedis, chromium: str
) -> None:
    """Two gateway replicas' reports: the card shows their summed rejected and retried calls, the
    edge table their summed refusals; a service with no breakers gets a row, and a replica of an
    older chassis (no edge) a card but no row."""

    stack = dashboard_on_own_redis
    ARTIFACTS.mkdir(exist_ok=True)
    payloads = [
        metrics_payload(
            "gateway-web",
            "gw-1",
            {BREAKER: {"success": 8, "failure": 2, "rejected": 3, "retried": 2}},
            {"rate_limited": 5, "shed": 1},
        ),
        metrics_payload(
            "gateway-web",
            "gw-2",
            {BREAKER: {"success": 10, "rejected": 4, "retried": 5}},
            {"rate_limited": 2, "deadline_exceeded": 3},
        ),
        metrics_payload("orders", "o-1", {}, {"shed": 4}),
        metrics_payload("gateway-mobile", "m-1", {"gateway-mobile->catalog": {"success": 3}}, None),
    ]
    async with launched(chromium) as browser:
        page = await browser.new_page(viewport={"width": 1400, "height": 700})
        page_errors: list[str] = []
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        await page.goto(stack.url + "/")
        await page.wait_for_selector('#redis[data-status="up"]', timeout=10_000)
        assert await page.locator("#no-edge").is_visible()
        with redis.Redis(port=stack.redis_port) as publisher:
            for payload in payloads:
                publisher.publish(METRICS_CHANNEL, payload)
        card = await wait_card(
            page,
            lambda c: c is not None and "rejected 7" in c["text"],
            "the card sums both replicas",
            timeout_s=10,
        )
        assert "retried 7" in card["text"]
        assert "failed 2" in card["text"]
        assert "27 req" in card["text"]  # rejected calls are requests, retries are not
        assert card["label"] == "Closed"
        assert "10.0 %" in await page.locator(f'.breaker[data-name="{BREAKER}"] .error').inner_text()
        await page.wait_for_selector('#edge-rows tr[data-name="orders"]', timeout=10_000)
        assert await page.evaluate(EDGE_JS) == [
            {
                "service": "gateway-web",
                "quiet": "false",
                "cells": ["gateway-web", "7", "1", "3"],
                "hot": ["e-rate_limited", "e-shed", "e-deadline_exceeded"],
            },
            {
                "service": "orders",
                "quiet": "false",
                "cells": ["orders", "0", "4", "0"],
                "hot": ["e-shed"],
            },
        ]
        assert await page.locator("#edge").is_visible()
        assert not await page.locator("#no-edge").is_visible()
        assert await page.locator("#edge-window").inner_text() == "requests refused at once, last 10 s"
        assert await page.locator('.breaker[data-name="gateway-mobile->catalog"]').count() == 1
        await page.screenshot(path=str(ARTIFACTS / "dashboard-edge.png"), full_page=True)
        assert page_errors == []


# The wall: 52 breakers of three callers, each reported by 2-3 replicas.
WALL_REPLICAS = {
    "gateway-web": ["gw-1", "gw-2", "gw-3"],
    "gateway-mobile": ["m-1", "m-2"],
    "orders": ["o-1", "o-2"],
}
WALL_CALLEES = {"gateway-web": 24, "gateway-mobile": 16, "orders": 12}
PARTIAL = "gateway-web->svc-07"  # not on gw-3 (a breaker only a newer version has): 2 hosts
MIXED = "gateway-web->svc-11"  # open on gw-2 only: replicas disagree for a moment
OPENS = "gateway-web->svc-05"  # closed, then open: a change the dashboard sees


def wall_events(i: int, r: int) -> dict[str, int]:
    """Varied, deterministic counts of breaker ``i`` on replica ``r`` (ties in error % included)."""
    return {
        "success": 20 + (i * 7 + r * 3) % 50,
        "bad_request": (i + r) % 4,
        "failure": (i % 5) * (r + 1),
        "timeout": r if i % 3 == 0 else 0,
        "rejected": 2 if i % 7 == 0 else 0,
        "retried": 1 if i % 4 == 0 else 0,
    }


def wall_reports(phase: int) -> dict[tuple[str, str], dict[str, dict[str, int]]]:
    """(service, replica) -> breaker -> events; in phase 2 ``OPENS`` is open everywhere."""
    reports: dict[tuple[str, str], dict[str, dict[str, int]]] = {}
    for service, replicas in WALL_REPLICAS.items():
        for r, replica in enumerate(replicas):
            breakers = reports.setdefault((service, replica), {})
            for i in range(WALL_CALLEES[service]):
                name = f"{service}->svc-{i:02d}"
                if name == PARTIAL and replica == "gw-3":
                    continue
                breakers[name] = (
                    {"failure": 3, "short_circuited": 30}
                    if phase == 2 and name == OPENS
                    else wall_events(i, r)
                )
    return reports


def wall_states(phase: int, replica: str) -> dict[str, str]:
    states = {"gateway-mobile->svc-03": "open"}  # open from the start
    if replica == "gw-2":
        states[MIXED] = "open"
    if phase == 2:
        states[OPENS] = "open"
    return states


def expected_wall(
    phase: int,
) -> tuple[list[tuple[str, list[str]]], dict[str, dict[str, int]], dict[str, int]]:
    """The order the page must show (the rule, recomputed from the inputs), the summed counts and
    the reporting hosts of every breaker."""
    sums: dict[str, dict[str, int]] = {}
    hosts: dict[str, int] = {}
    states: dict[str, set[str]] = {}
    rates: dict[str, float] = {}
    for (_, replica), breakers in wall_reports(phase).items():
        for name, events in breakers.items():
            total = sums.setdefault(name, {})
            for event, n in events.items():
                total[event] = total.get(event, 0) + n
            hosts[name] = hosts.get(name, 0) + 1
            states.setdefault(name, set()).add(wall_states(phase, replica).get(name, "closed"))
            requests = sum(n for event, n in events.items() if event != "retried")
            rates[name] = rates.get(name, 0.0) + requests / 10

    def rank(name: str) -> tuple[bool, int, int, str]:
        c = sums[name]
        errors = c.get("failure", 0) + c.get("timeout", 0)
        attempts = c.get("success", 0) + errors
        error = round(100.0 * errors / attempts, 1) if attempts else 0.0
        return (states[name] == {"closed"}, -error_band(error), -volume_band(rates[name]), name)

    groups: dict[str, list[str]] = {}
    for name in sorted(sums, key=rank):
        groups.setdefault(name.split("->")[0], []).append(name)
    return list(groups.items()), sums, hosts


async def test_the_wall_of_52_breakers_from_several_replicas(
    dashboard_on_own_redis: DashboardOnOwnRedis, chromium: str
) -> None:
    """Grouped by caller, sorted (not closed first, then error % and volume by band, then name),
    counts summed over the replicas, host counts, Zipkin links, and the time since each state began."""
    stack = dashboard_on_own_redis
    ARTIFACTS.mkdir(exist_ok=True)
    phases = {
        phase: [
            metrics_payload(service, replica, breakers, None, wall_states(phase, replica))
            for (service, replica), breakers in wall_reports(phase).items()
        ]
        for phase in (1, 2)
    }
    phase = 1

    async def publish() -> None:  # every replica once every half second, as long as the test runs
        client = aioredis.Redis(port=stack.redis_port)
        try:
            while True:
                for payload in phases[phase]:
                    await client.publish(METRICS_CHANNEL, payload)
                await asyncio.sleep(0.5)
        finally:
            await client.aclose()

    async with launched(chromium) as browser:
        publisher = asyncio.create_task(publish())
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            page_errors: list[str] = []
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            await page.goto(stack.url + "/")
            await page.wait_for_selector('#redis[data-status="up"]', timeout=10_000)
            await page.wait_for_function(
                "() => document.querySelectorAll('.breaker').length === 52", timeout=15_000
            )
            await asyncio.sleep(2.5)  # a while in phase 1: the states the dashboard found age
            phase = 2
            opened = await page.wait_for_selector(
                f'.breaker[data-name="{OPENS}"][data-state="open"]', timeout=10_000
            )
            assert opened is not None
            await asyncio.sleep(1.2)  # a tick or so: every replica's phase-2 report is in
            wall = await page.evaluate(WALL_JS)
            order, sums, hosts = expected_wall(2)

            # Grouped by caller (a group per caller, cards named by callee), in the rule's order.
            assert [(g["caller"], [c["name"] for c in g["cards"]]) for g in wall] == order
            assert [g["title"] for g in wall] == [f"{caller} ({len(names)})" for caller, names in order]
            cards = {c["name"]: c for g in wall for c in g["cards"]}
            assert len(cards) == 52
            assert wall[0]["cards"][0]["state"] in ("open", "mixed")
            assert cards[MIXED]["label"] == "1 Open / 2 Closed"

            for name, card in cards.items():
                c = sums[name]
                assert card["callee"] == name.split("->")[1]
                assert card["counts"] == [
                    f"ok {c.get('success', 0)}",
                    f"short {c.get('short_circuited', 0)}",
                    f"bad req {c.get('bad_request', 0)}",
                    f"timeout {c.get('timeout', 0)}",
                    f"rejected {c.get('rejected', 0)}",
                    f"failed {c.get('failure', 0)}",
                ], name
                assert card["hosts"] == f"hosts {hosts[name]}", name
                callee = name.split("->")[1]
                assert card["traces"] == f"{ZIPKIN_UI}/zipkin/?serviceName={callee}&lookback=15m&limit=10"
                # In this state since before the dashboard could tell: a lower bound. (Not MIXED: a
                # tick between its replicas' first reports sees a change from closed, rightly.)
                if name not in (OPENS, MIXED):
                    assert re.fullmatch(r"≥\d+s", card["since"]), (name, card["since"])
            assert (hosts[PARTIAL], hosts["orders->svc-00"], hosts["gateway-web->svc-00"]) == (2, 2, 3)
            # The change to Open was seen: its exact age, a few seconds at most.
            since = cards[OPENS]["since"]
            assert re.fullmatch(r"\d+s", since), since
            assert int(since[:-1]) <= 4, since
            assert cards[OPENS]["label"] == "Open"
            assert int(cards["gateway-web->svc-00"]["since"][1:-1]) >= 2

            # Following the link stamps the moment into it: Zipkin Lens then runs the search.
            link = page.locator(f'.breaker[data-name="{OPENS}"] a.traces')
            await link.dispatch_event("pointerdown")
            stamped = await link.get_attribute("href")
            assert stamped is not None
            base, _, end_ts = stamped.partition("&endTs=")
            assert base == f"{ZIPKIN_UI}/zipkin/?serviceName=svc-05&lookback=15m&limit=10"
            assert abs(int(end_ts) - time.time() * 1000) < 60_000
            assert await link.get_attribute("target") == "_blank"

            await page.screenshot(path=str(ARTIFACTS / "dashboard-wall.png"), full_page=True)
            assert page_errors == []
        finally:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
