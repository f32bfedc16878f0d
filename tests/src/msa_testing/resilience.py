"""Resilience scenarios against a running compose stack, with real faults: a paused container, a
service failing by configuration, a slow one, a burst, an overload. Each returns its figures;
``tests/containers/test_resilience.py`` asserts on them and ``scripts/bench_resilience.py`` prints
them side by side. Every limit is changed the way an operator would: a commit to the stack's
config repository, waited for until each service runs it, and reverted after.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from chassis.ops import operator_headers
from msa_testing.containers import ComposeStack
from msa_testing.overload import OverloadResult, overload
from msa_testing.polling import wait_until

__all__ = [
    "PAGE",
    "configured",
    "p99",
    "scenario_bulkhead",
    "scenario_deadline",
    "scenario_overload",
    "scenario_rate_limit",
    "scenario_retries",
]

PAGE = "/api/products/p-1001"
RETRY_WINDOW_S = 10  # what the retry budget looks back on (the breaker metrics' rolling window)


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[max(math.ceil(0.99 * len(ordered)), 1) - 1] if ordered else float("nan")


def _version(stack: ComposeStack, service: str) -> str:
    """The config version a service runs (``/ops/config`` from inside its first container)."""
    container = stack.containers(service)[0].name
    token = operator_headers()["authorization"]
    code = (
        "import json, urllib.request\n"
        "r = urllib.request.Request('http://127.0.0.1:8000/ops/config', "
        f"headers={{'authorization': {token!r}}})\n"
        "print(json.load(urllib.request.urlopen(r, timeout=10))['version'])"
    )
    return stack.exec_python(container, code).stdout.strip()


def _wait_version(stack: ComposeStack, service: str, version: str) -> None:
    wait_until(
        f"{service} on config {version[:8]}", lambda: _version(stack, service) == version, timeout_s=30
    )


def _merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = _merge(merged.get(key) or {}, value) if isinstance(value, Mapping) else value
    return merged


@contextmanager
def configured(stack: ComposeStack, changes: Mapping[str, Mapping[str, Any]]) -> Iterator[None]:
    """``{"gateway-web": {"bulkhead": {"max_concurrent": 4}}}``: merged into each service's file of
    the config repository, committed, waited for; reverted (and waited for) on the way out."""

    def commit(message: str) -> None:
        stack.git("commit", "-q", "-am", message)
        head = stack.git("rev-parse", "HEAD")
        for service in changes:
            _wait_version(stack, service, head)

    originals = {}
    for service, values in changes.items():
        path = stack.directory / "deploy" / "config-repo" / f"{service}.yml"
        originals[path] = path.read_text()
        path.write_text(yaml.safe_dump(_merge(yaml.safe_load(originals[path]) or {}, values)))
    commit(f"scenario: {json.dumps(changes)}")
    try:
        yield
    finally:
        for path, text in originals.items():
            path.write_text(text)
        commit("scenario over")


@dataclass
class Load:
    """What a bounded load saw: statuses, latencies (s), answers with X-Degraded, problem titles
    (and, for requests that got no answer, the error's name)."""

    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    degraded: int = 0
    titles: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    async def get(self, client: httpx.AsyncClient, url: str) -> None:
        started = time.perf_counter()
        try:
            answer = await client.get(url)
            status = answer.status_code
            self.degraded += bool(answer.headers.get("x-degraded"))
            if status >= 400 and answer.headers.get("content-type", "").startswith(
                "application/problem+json"
            ):
                title = f"{status} {answer.json().get('title')}"
                self.titles[title] += 1
        except httpx.HTTPError as exc:  # no answer: counted as status 0, and what it was named
            status = 0
            self.titles[f"0 {type(exc).__name__}"] += 1
        self.latencies.append(time.perf_counter() - started)
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def _load(
    url: str, *, clients: int, seconds: float, headers: Mapping[str, str] | None = None, cookies: Any = None
) -> Load:
    """``clients`` loops GETting ``url`` for ``seconds``, each waiting for its answer (closed loop)."""
    load = Load()
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=10, limits=limits, headers=headers, cookies=cookies) as client:

        async def one() -> None:
            while time.monotonic() < stop:
                await load.get(client, url)

        await asyncio.gather(*(one() for _ in range(clients)))
    return load


async def _paced(url: str, *, rate: float, seconds: float) -> Load:
    """``rate`` GETs a second for ``seconds``, each sent on time whether earlier ones answered or
    not (open loop: a slow answer does not slow the arrivals, as with real users)."""
    load = Load()
    # Idle connections expire here before the server's 5 s keep-alive ends them: at httpx's own 5 s,
    # a request could go out on a connection the server was closing at that moment (no answer).
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        started = time.monotonic()
        requests = []
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            requests.append(asyncio.create_task(load.get(client, url)))
        await asyncio.gather(*requests)
    return load


def _telemetry(stack: ComposeStack, service: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{stack.url(service)}/ops/telemetry", timeout=5).json()
    return found


def _breaker_counts(stack: ComposeStack, name: str) -> dict[str, int]:
    (breaker,) = [b for b in _telemetry(stack, "gateway-web")["breakers"] if b["name"] == name]
    counts: dict[str, int] = breaker["counts"]
    return counts


def _web_session(stack: ComposeStack) -> httpx.Cookies:
    answer = httpx.post(
        f"{stack.url('gateway-web')}/auth/login",
        json={"username": "alice", "password": "alice-password"},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.cookies


# ---- bulkhead -------------------------------------------------------------------------------------


def scenario_bulkhead(stack: ComposeStack, *, rate: float = 30, seconds: float = 8.0) -> dict[str, Any]:
    """inventory paused; product pages arrive at ``rate`` a second while one client lists its
    orders, with gateway-web's bulkhead at 1000 (none to speak of) and at 8. The breaker is kept
    closed (fail_max 1000) so the bulkhead alone is measured. Figures: listing p50/p99, the pages'
    latency and statuses, calls rejected, gateway-web's memory at the end of the burst."""
    web = stack.url("gateway-web")
    cookies = _web_session(stack)
    baseline = asyncio.run(_load(f"{web}/api/orders", clients=1, seconds=2, cookies=cookies))
    figures: dict[str, Any] = {"listing_idle": _summary(baseline)}
    try:
        stack.compose("pause", "inventory")
        for label, limit in (("without", 1000), ("with", 8)):
            changes = {
                "gateway-web": {"bulkhead": {"callees": {"inventory": limit}}, "breaker": {"fail_max": 1000}}
            }
            with configured(stack, changes):

                async def both() -> tuple[Load, Load, float]:
                    pages = asyncio.create_task(_paced(f"{web}{PAGE}", rate=rate, seconds=seconds))
                    listing = asyncio.create_task(
                        _load(f"{web}/api/orders", clients=1, seconds=seconds, cookies=cookies)
                    )
                    await asyncio.sleep(seconds - 1)
                    memory = await asyncio.to_thread(lambda: stack.memory()["gateway-web"][0])
                    return await pages, await listing, memory

                pages, listing, memory = asyncio.run(both())
                figures[label] = {
                    "limit": limit,
                    "listing": _summary(listing),
                    "pages": _summary(pages),
                    "rejected": _breaker_counts(stack, "gateway-web->inventory")["rejected"],
                    "gateway_mib": round(memory, 1),
                }
    finally:
        stack.compose("unpause", "inventory")
    return figures


def _summary(load: Load) -> dict[str, Any]:
    ordered = sorted(load.latencies)
    return {
        "requests": load.total,
        "statuses": dict(sorted(load.statuses.items())),
        "degraded": load.degraded,
        "problems": dict(load.titles),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 1) if ordered else None,
        "p99_ms": round(p99(ordered) * 1000, 1) if ordered else None,
    }


# ---- retries and their budget ---------------------------------------------------------------------


# an access-log line (method, path, status, duration) of a call a product page makes
_PAGE_CALLS = re.compile(r"GET /products/[^ ]+/reviews \d{3} [\d.]+ms")


def _logs(container: str, since: str) -> str:
    """A container's log since ``since`` (services log to stderr)."""
    result = subprocess.run(
        ["docker", "logs", "--since", since, container],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout + result.stderr


def _reviews_calls_since(stack: ComposeStack, since: str) -> int:
    """Requests reviews received since ``since``: its access log lines for the call a product page
    makes (``/products/{id}/reviews``, which carries the rating summary too)."""
    total = 0
    for container in stack.containers("reviews"):
        logs = _logs(container.name, since)
        total += len(_PAGE_CALLS.findall(logs))
    return total


def _pages(stack: ComposeStack, count: int) -> tuple[int, int]:
    """``count`` sequential product pages: (whole pages, answered pages)."""
    whole = answered = 0
    with httpx.Client(timeout=10) as client:
        for _ in range(count):
            answer = client.get(f"{stack.url('gateway-web')}{PAGE}")
            answered += answer.status_code == 200
            whole += answer.status_code == 200 and "reviews" not in answer.headers.get("x-degraded", "")
    return whole, answered


def scenario_retries(stack: ComposeStack, *, pages: int = 200) -> dict[str, Any]:
    """reviews failing 30% of the time (503): whole product pages without and with retries. Then
    failing always: calls reviews receives per page with the retry budget (20%) and without one.
    The breaker is kept closed (fail_max 1000) so that retries alone are measured. At 30% failures
    three attempts need ~39% more calls, past the default 20% budget (whether the calls of the
    phase before still count in its 10 s window decides how far): the 30% phases measure retries
    with a 50% budget, and the budget is measured on its own, with failures on every call."""
    figures: dict[str, Any] = {}
    closed = {"breaker": {"fail_max": 1000}}
    with configured(stack, {"reviews": {"chaos": {"error_rate": 0.3, "error_status": 503}}}):
        for label, attempts in (("no_retries", 1), ("retries", 3)):
            lifted: dict[str, Any] = {"max_attempts": attempts, "budget_ratio": 0.5}
            with configured(stack, {"gateway-web": {**closed, "retry": lifted}}):
                whole, answered = _pages(stack, pages)
                figures[f"failing_30pct_{label}"] = {"pages": pages, "whole": whole, "answered": answered}
    with configured(stack, {"reviews": {"chaos": {"error_rate": 1.0, "error_status": 503}}}):
        unbounded = {"max_attempts": 3, "budget_ratio": 1.0, "min_per_s": 1000}
        for label, retry in (("no_budget", unbounded), ("budget", {"max_attempts": 3})):
            with configured(stack, {"gateway-web": {**closed, "retry": retry}}):
                # the budget looks back 10 s: let the retries of the phase before leave the window
                time.sleep(RETRY_WINDOW_S + 1)
                since = str(int(time.time()))
                time.sleep(1.1)  # `docker logs --since` counts whole seconds
                _, answered = _pages(stack, pages)
                time.sleep(0.5)
                calls = _reviews_calls_since(stack, since)
                figures[f"failing_100pct_{label}"] = {
                    "pages": pages,
                    "answered": answered,
                    "reviews_calls": calls,
                    "calls_per_page": round(calls / pages, 2),
                }
    return figures


# ---- deadlines ------------------------------------------------------------------------------------


def scenario_deadline(stack: ComposeStack) -> dict[str, Any]:
    """reviews sleeps 2.5 s (chaos latency) before each request; gateway-web waits 1.5 s for it.
    The product page answers within its budget, degraded; reviews drops the request after its
    sleep instead of doing the work (its counter and log say so). A call without a deadline, made
    from inside the reviews container, is still served after the same sleep."""
    with configured(stack, {"reviews": {"chaos": {"latency_ms": 2500}}}):
        (reviews,) = stack.containers("reviews")[:1]
        before = _edge(stack, reviews.name)
        started = time.perf_counter()
        page = httpx.get(f"{stack.url('gateway-web')}{PAGE}", timeout=10)
        page_s = time.perf_counter() - started
        dropped = wait_until(
            "reviews to drop the late request",
            lambda: (lambda n: n if n > before else None)(_edge(stack, reviews.name)),
            timeout_s=10,
        )
        served = stack.exec_python(
            reviews.name,
            "import urllib.request\n"
            "print(urllib.request.urlopen('http://127.0.0.1:8000/products/p-1001/reviews', timeout=10).status)",
        ).stdout.strip()
        log = _logs(reviews.name, "60s")
    return {
        "page_status": page.status_code,
        "page_degraded": page.headers.get("x-degraded", ""),
        "page_s": round(page_s, 2),
        "reviews_dropped": dropped - before,
        "reviews_log_says_dropped": "the caller's deadline passed" in log,
        "without_deadline_status": served,
    }


def _edge(stack: ComposeStack, container: str) -> int:
    counts = stack.get_json(container, "/ops/telemetry")["edge"]["counts"]
    return int(counts["deadline_exceeded"])


# ---- rate limits ----------------------------------------------------------------------------------


def _mobile_token(stack: ComposeStack, user: str) -> str:
    answer = httpx.post(
        f"{stack.url('gateway-mobile')}/auth/token",
        json={"username": user, "password": f"{user}-password"},
        timeout=10,
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


def scenario_rate_limit(stack: ComposeStack, *, burst: int = 30) -> dict[str, Any]:
    """gateway-mobile's per-principal limit lowered to 5 per 10 s (burst 5); alice's token sends
    ``burst`` requests at once, then bob's token (same address) sends 5. Figures: alice's statuses,
    how long her burst took (from the first sent to the last answered), the headers of one 429,
    bob's statuses, gateway-mobile's ``rate_limited`` count."""
    alice, bob = _mobile_token(stack, "alice"), _mobile_token(stack, "bob")
    url = f"{stack.url('gateway-mobile')}/m/orders"
    limit = {
        "gateway-mobile": {
            "rate_limit": {"groups": {"api": {"per_principal": {"limit": 5, "period_s": 10, "burst": 5}}}}
        }
    }

    async def send(token: str, count: int) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=10, headers={"authorization": f"Bearer {token}"}) as client:
            return list(await asyncio.gather(*(client.get(url) for _ in range(count))))

    with configured(stack, limit):
        started = time.monotonic()
        alice_answers = asyncio.run(send(alice, burst))
        burst_s = time.monotonic() - started
        bob_answers = asyncio.run(send(bob, 5))
        refused = [a for a in alice_answers if a.status_code == 429]
        sample = refused[0] if refused else None
        counted = _telemetry(stack, "gateway-mobile")["edge"]["counts"]["rate_limited"]
    return {
        "alice": _statuses(alice_answers),
        "alice_burst_s": round(burst_s, 2),
        "bob": _statuses(bob_answers),
        "refused_headers": {
            name: sample.headers.get(name)
            for name in ("retry-after", "ratelimit-policy", "ratelimit", "content-type")
        }
        if sample
        else {},
        "refused_title": sample.json().get("title") if sample else None,
        "rate_limited_counted": counted,
    }


def _statuses(answers: list[httpx.Response]) -> dict[int, int]:
    found: dict[int, int] = {}
    for answer in answers:
        found[answer.status_code] = found.get(answer.status_code, 0) + 1
    return dict(sorted(found.items()))


# ---- overload -------------------------------------------------------------------------------------


def scenario_overload(stack: ComposeStack, *, clients: int = 400, seconds: float = 15.0) -> dict[str, Any]:
    """``clients`` closed-loop clients on gateway-web's product page for ``seconds``: how fast shed
    requests are refused and the accepted requests' p99 against the page budget, as a probe sees
    them (a process of its own, connected before the load; the crowd's figures too), the
    gateway's memory against its limit, its shed count; then whether everything recovered (20
    product pages one after another, all whole); then the same crowd honoring Retry-After (a
    client answered 503 waits the second it says, as a well-behaved client does); then the same
    crowd with shedding off."""
    web = stack.url("gateway-web")
    before = _telemetry(stack, "gateway-web")["shedding"]["shed"]

    async def run() -> tuple[OverloadResult, tuple[float, float]]:
        # the probe: a few clients in a process of their own (the crowd's own loop is saturated)
        load = asyncio.create_task(
            overload(f"{web}{PAGE}", clients=clients, seconds=seconds, probe_every_s=0.02)
        )
        await asyncio.sleep(seconds * 0.7)
        memory = await asyncio.to_thread(lambda: stack.memory()["gateway-web"])
        return await load, memory

    result, (used_mib, limit_mib) = asyncio.run(run())
    shed = _telemetry(stack, "gateway-web")["shedding"]["shed"] - before
    after = wait_until("whole pages again", lambda: _pages(stack, 20)[0] == 20 or None, timeout_s=30)
    polite = asyncio.run(
        overload(f"{web}{PAGE}", clients=clients, seconds=seconds, probe_every_s=0.02, honor_retry_after=True)
    )
    wait_until("whole pages again", lambda: _pages(stack, 20)[0] == 20 or None, timeout_s=30)
    with configured(stack, {"gateway-web": {"shed": {"enabled": False}}}):  # the same crowd, let in
        unshed = asyncio.run(overload(f"{web}{PAGE}", clients=clients, seconds=seconds, probe_every_s=0.02))
    wait_until("whole pages again", lambda: _pages(stack, 20)[0] == 20 or None, timeout_s=30)
    return {
        "summary": result.summary(),
        "statuses": dict(sorted(result.statuses.items())),
        "connecting_failed": result.connecting_failed,
        "rps": round(result.rps),
        "shed_ms": result.percentiles("probe 5xx"),
        "accepted_ms": result.percentiles("probe 2xx"),
        "crowd_shed_ms": result.percentiles("5xx"),
        "crowd_accepted_ms": result.percentiles("2xx"),
        "connecting_ms": result.percentiles("first"),
        "retry_after": dict(result.retry_after),
        "shed_counted": shed,
        "gateway_mib": round(used_mib, 1),
        "gateway_limit_mib": round(limit_mib),
        "recovered": bool(after),
        "polite_summary": polite.summary(),
        "polite_statuses": dict(sorted(polite.statuses.items())),
        "polite_connecting_failed": polite.connecting_failed,
        "polite_shed_ms": polite.percentiles("probe 5xx"),
        "polite_accepted_ms": polite.percentiles("probe 2xx"),
        "unshed_summary": unshed.summary(),
        "unshed_statuses": dict(sorted(unshed.statuses.items())),
        "unshed_accepted_ms": unshed.percentiles("probe 2xx"),
    }
