"""Load shedding (chassis.shedding): the AIMD arithmetic on a fake clock, the refusal and its exempt
routes in-process (by the ASGI layer, and by the server as a request head is read: chassis.server),
and an overload of a real service process whose route burns CPU."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from chassis import PROBLEM_JSON, LiveSettings, ServiceSettings, create_app
from chassis.bff import BffSettings
from chassis.breakers import RollingCounts
from chassis.server import server_options
from chassis.settings import ServerSettings, ShedSettings
from chassis.shedding import AimdLimit, LoadShedder
from chassis.state import chassis_state, resource
from msa_testing.apps import served
from msa_testing.figures import Figures
from msa_testing.logs import Collect
from msa_testing.overload import overload
from msa_testing.servers import served_process

# --- the limit's arithmetic (clock readings passed in) ---

SHED = ShedSettings(initial_limit=100, min_limit=10, max_limit=200, backoff_ratio=0.5)


def answer(
    limit: AimdLimit, *, started: float, took: float, status: int = 200, load: int = 1, lag: float = 0.0
) -> None:
    limit.answered(
        SHED, started=started, now=started + took, status=status, load=load, target_s=1.0, loop_lag_s=lag
    )


def test_a_generation_of_slow_answers_cuts_the_limit_once() -> None:
    limit = AimdLimit(SHED.initial_limit)
    for _ in range(30):  # thirty requests admitted together, all late (one stall): one cut, not thirty
        answer(limit, started=0.0, took=2.0, load=30)
    assert limit.bounded(SHED) == 50
    answer(limit, started=2.5, took=1.5)  # admitted after that cut, and late still: a second cut
    assert limit.bounded(SHED) == 25
    answer(limit, started=4.5, took=0.1, status=503)  # a downstream's 503 or a caller's 504: not ours
    answer(limit, started=4.6, took=0.1, status=504)
    assert limit.bounded(SHED) == 27  # two timely answers: +1 each, back towards the initial limit
    answer(limit, started=5.0, took=1.5)
    answer(limit, started=5.1, took=1.5)  # (started before the cut at 6.5: the same generation)
    assert limit.bounded(SHED) == 13
    # an event-loop stall: the same rule (a stall that began before the last cut is ignored)
    assert not limit.congested(SHED, since=6.0, now=6.8)
    assert limit.congested(SHED, since=6.6, now=6.9)
    assert limit.bounded(SHED) == 10  # 6, floored at min_limit


def test_timely_answers_regrow_the_limit_while_it_is_in_use_and_the_loop_keeps_up() -> None:
    limit = AimdLimit(SHED.initial_limit)
    answer(limit, started=0.0, took=2.0)
    assert limit.bounded(SHED) == 50
    answer(limit, started=3.0, took=0.05, lag=0.3)  # the loop is late: no growth
    assert limit.bounded(SHED) == 50
    for n in range(50):  # under the initial limit: +1 per timely answer, busy or not
        answer(limit, started=4.0 + n, took=0.05)
    assert limit.bounded(SHED) == 100
    for n in range(100):  # over it: an idle limit does not grow...
        answer(limit, started=60.0 + n, took=0.05, load=10)
    assert limit.bounded(SHED) == 100
    for n in range(205):  # ...a busy one by 1 per limit's worth of answers
        answer(limit, started=200.0 + n, took=0.05, load=120)
    assert limit.bounded(SHED) == 102
    capped = AimdLimit(SHED.max_limit)
    for n in range(400):
        answer(capped, started=float(n), took=0.05, load=200)
    assert capped.bounded(SHED) == SHED.max_limit


def test_a_config_change_applies_to_the_next_request() -> None:
    limit = AimdLimit(100)
    assert limit.bounded(SHED.model_copy(update={"max_limit": 40})) == 40
    assert limit.bounded(SHED.model_copy(update={"min_limit": 150})) == 150
    with pytest.raises(ValidationError, match="min_limit"):
        ShedSettings(min_limit=60, max_limit=50)
    remote = ServiceSettings.load(remote={"shed.max_limit": 300, "shed.latency_target_s": "0.5"})
    assert (remote.shed.max_limit, remote.shed.latency_target_s) == (300, 0.5)


class BffService(ServiceSettings):
    bff: BffSettings = BffSettings(budget_s=1.5)


def test_the_latency_target_of_a_bff_is_its_budget() -> None:
    def target(settings: ServiceSettings) -> float:
        return LoadShedder(LiveSettings(settings), RollingCounts(("shed",))).target_s(settings)

    base: dict[str, Any] = {"zipkin_endpoint": None, "env": "test"}
    assert target(ServiceSettings(**base)) == 1.0
    assert target(BffService(**base)) == 1.5
    assert target(BffService(**base, shed=ShedSettings(latency_target_s=0.3))) == 0.3


async def test_heads_handed_to_the_app_count_until_their_tasks_run() -> None:
    # The server asks overloaded() of each request head (counting nothing), and counts the heads
    # it lets through for the rest of the loop turn: their tasks run in the next one.
    one = ShedSettings(initial_limit=2, min_limit=2, max_limit=2)
    settings = ServiceSettings(zipkin_endpoint=None, env="test", shed=one)
    shedder = LoadShedder(LiveSettings(settings), RollingCounts(("shed",)))
    assert not shedder.overloaded(one)
    shedder.passed()
    shedder.passed()
    assert shedder.overloaded(one)
    assert (shedder.shed, shedder.edge.counts()["shed"]) == (0, 0)
    shedder.refused()
    assert (shedder.shed, shedder.edge.counts()["shed"]) == (1, 1)
    await asyncio.sleep(0)  # the next turn: the tasks of those heads run now, admit counts them
    assert not shedder.overloaded(one)
    assert shedder.admit(one) == 1
    assert shedder.admit(one) == 2
    assert shedder.admit(one) == 0  # the limit
    assert shedder.shed == 2


# --- the refusal, in-process on a real socket ---


def one_at_a_time(redis_url: str) -> tuple[FastAPI, asyncio.Event, asyncio.Event]:
    """An app that lets one request in at a time, and its ``/slow`` route: ``entered`` is set when
    a request is in it, and it answers once ``release`` is set."""
    entered, release = asyncio.Event(), asyncio.Event()
    router = APIRouter()

    @router.get("/slow")
    async def slow() -> dict[str, bool]:
        entered.set()
        await release.wait()
        return {"ok": True}

    one = ShedSettings(initial_limit=1, min_limit=1, max_limit=1)
    settings = ServiceSettings(
        service_name="shed-test", redis_url=redis_url, zipkin_endpoint=None, env="test", shed=one
    )
    return create_app(settings, routers=[router]), entered, release


async def test_over_the_limit_a_request_is_answered_503_at_once_and_exempt_routes_pass(
    redis_url: str,
) -> None:
    app, entered, release = one_at_a_time(redis_url)
    shedder = resource(app, LoadShedder)
    access = Collect(logging.INFO)
    logging.getLogger("access").addHandler(access)
    try:
        async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
            held = asyncio.create_task(client.get("/slow"))
            await entered.wait()

            started = time.perf_counter()
            refused = await client.get("/slow", headers={"X-Request-ID": "shed-me-1"})
            took_ms = (time.perf_counter() - started) * 1000
            assert refused.status_code == 503
            assert refused.headers["content-type"] == PROBLEM_JSON
            assert refused.headers["retry-after"] == "1"
            assert refused.headers["x-request-id"] == "shed-me-1"
            problem = refused.json()
            assert problem["title"] == "Service Overloaded"
            assert (problem["status"], problem["instance"], problem["request_id"]) == (
                503,
                "/slow",
                "shed-me-1",
            )
            assert took_ms < 500, took_ms  # at once, while the admitted request still waits

            # health, ops and docs are neither shed nor counted
            for path in ("/health/live", "/health/ready", "/ops/telemetry", "/docs", "/openapi.json"):
                assert (await client.get(path)).status_code == 200, path
            telemetry = (await client.get("/ops/telemetry")).json()
            assert telemetry["shedding"]["in_flight"] == 1
            assert telemetry["shedding"]["shed"] == 1
            assert telemetry["edge"]["counts"]["shed"] == 1

            # a config commit turns shedding off without a restart: the next request is let in
            live = chassis_state(app).live
            settings = live.current
            live.replace(
                settings.model_copy(update={"shed": settings.shed.model_copy(update={"enabled": False})})
            )
            second = asyncio.create_task(client.get("/slow"))
            await asyncio.sleep(0.2)
            assert not second.done()
            release.set()
            assert (await held).status_code == 200
            assert (await second).status_code == 200
            live.replace(settings)
            assert (await client.get("/slow")).status_code == 200  # nothing in flight: let in
    finally:
        logging.getLogger("access").removeHandler(access)
    shed_lines = [r for r in access.records if getattr(r, "http.status_code", None) == 503]
    assert [getattr(r, "http.path") for r in shed_lines] == ["/slow"]  # the access line of the refusal
    assert shedder.in_flight == 0


def served_like_production(app: FastAPI) -> contextlib.AbstractAsyncContextManager[str]:
    """The app on a real socket with the server ``serve()`` runs: the chassis protocol, shedding with
    the app's ``LoadShedder`` as request heads are read. Yields its URL."""
    return served(app, **server_options(ServerSettings(), resource(app, LoadShedder)))


def raw_request(method: str, path: str, body: bytes = b"", version: str = "1.1", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: shed-test", *(f"{k}: {v}" for k, v in headers.items())]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(
    reader: asyncio.StreamReader, *, head: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """One response off a connection: status, headers (names lowercased) and body."""
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status_line, *lines = raw.decode("latin-1").split("\r\n")[:-2]
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}
    length = 0 if head else int(headers.get("content-length", "0"))
    return int(status_line.split()[1]), headers, await asyncio.wait_for(reader.readexactly(length), 5)


async def test_the_server_refuses_at_the_request_head_without_running_the_app(redis_url: str) -> None:
    app, entered, release = one_at_a_time(redis_url)
    ran: list[str] = []  # the paths of the requests the app was called for
    build = app.build_middleware_stack

    def recording() -> ASGIApp:
        inner = build()

        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                ran.append(scope["path"])
            await inner(scope, receive, send)

        return asgi

    app.build_middleware_stack = recording  # type: ignore[method-assign]
    access = Collect(logging.INFO)
    logging.getLogger("access").addHandler(access)
    try:
        async with (
            served_like_production(app) as url,
            httpx.AsyncClient(base_url=url, timeout=5) as client,
        ):
            held = asyncio.create_task(client.get("/slow"))  # the one request the limit lets in
            await entered.wait()
            reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))

            # two requests in one write: the first refused at its head, the second (exempt) let in
            writer.write(
                raw_request("GET", "/slow", **{"X-Request-ID": "shed-at-head"})
                + raw_request("GET", "/health/live")
            )
            status, headers, body = await read_response(reader)
            assert status == 503, body
            assert headers["content-type"] == PROBLEM_JSON
            assert headers["retry-after"] == "1"
            assert headers["x-request-id"] == "shed-at-head"
            assert "connection" not in headers  # kept alive: a request without a body was read whole
            problem = json.loads(body)
            assert (problem["title"], problem["status"], problem["instance"], problem["request_id"]) == (
                "Service Overloaded",
                503,
                "/slow",
                "shed-at-head",
            )
            assert (await read_response(reader))[0] == 200

            # HEAD: the same head, no body (the next answer on the connection starts where it should)
            writer.write(raw_request("HEAD", "/slow"))
            status, headers, _ = await read_response(reader, head=True)
            assert (status, headers["retry-after"]) == (503, "1")
            assert int(headers["content-length"]) > 0
            writer.write(raw_request("GET", "/slow?page=2"))
            assert (await read_response(reader))[0] == 503

            # a request with a body: answered before the body is read, so the connection is closed
            writer.write(raw_request("POST", "/slow", body=b'{"a": 1}'))
            status, headers, _ = await read_response(reader)
            assert (status, headers["connection"]) == (503, "close")
            assert await asyncio.wait_for(reader.read(), 3) == b""
            writer.close()
            # and an HTTP/1.0 client's (no keep-alive unless asked for: uvicorn keeps none)
            reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
            writer.write(raw_request("GET", "/slow", version="1.0"))
            status, headers, _ = await read_response(reader)
            assert (status, headers["connection"]) == (503, "close")
            assert await asyncio.wait_for(reader.read(), 3) == b""
            writer.close()

            assert ran == ["/slow", "/health/live"]  # no refused request reached the app
            telemetry = (await client.get("/ops/telemetry")).json()
            assert telemetry["shedding"]["shed"] == 5
            assert telemetry["shedding"]["in_flight"] == 1
            assert telemetry["edge"]["counts"]["shed"] == 5
            for path in ("/health/live", "/health/ready", "/ops/telemetry", "/docs", "/openapi.json"):
                assert (await client.get(path)).status_code == 200, path  # never refused

            # shedding off (a config commit): the next request head is let through to the app
            live = chassis_state(app).live
            settings = live.current
            live.replace(
                settings.model_copy(update={"shed": settings.shed.model_copy(update={"enabled": False})})
            )
            second = asyncio.create_task(client.get("/slow"))
            await asyncio.sleep(0.2)
            assert not second.done()
            release.set()
            assert (await held).status_code == 200
            assert (await second).status_code == 200
    finally:
        logging.getLogger("access").removeHandler(access)
    refused = [r for r in access.records if getattr(r, "http.status_code", None) == 503]
    # the access lines of the refusals, written by the server (the app's middleware never saw them)
    assert [(r.getMessage().split()[:2], r.pathname.endswith("server.py")) for r in refused] == [
        (["GET", "/slow"], True),
        (["HEAD", "/slow"], True),
        (["GET", "/slow"], True),
        (["POST", "/slow"], True),
        (["GET", "/slow"], True),
    ]
    assert refused[0].__dict__["request_id"] == "shed-at-head"
    assert resource(app, LoadShedder).in_flight == 0


async def test_requests_answered_in_the_same_loop_turn_count_against_the_limit(redis_url: str) -> None:
    # A handler that computes without awaiting is done before the next one starts: only the
    # answers of the current turn show that ten requests came at once.
    router = APIRouter()

    @router.get("/compute")
    async def compute() -> dict[str, bool]:
        until = time.perf_counter() + 0.02  # CPU work on the loop
        while time.perf_counter() < until:
            pass
        return {"ok": True}

    three = ShedSettings(initial_limit=3, min_limit=3, max_limit=3)
    settings = ServiceSettings(redis_url=redis_url, zipkin_endpoint=None, env="test", shed=three)
    app = create_app(settings, routers=[router])

    async def one(url: str) -> int:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            return (await client.get("/compute")).status_code

    async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=5) as client:
        statuses = sorted(await asyncio.gather(*(one(url) for _ in range(10))))
        assert statuses.count(200) >= 3, statuses
        assert statuses.count(503) >= 1, statuses
        await asyncio.sleep(0.05)  # a quiet turn later, the count starts again
        assert (await client.get("/compute")).status_code == 200
    assert resource(app, LoadShedder).in_flight == 0


# --- an overload of a real service process ---

WORK_MS = 5
# A route doing CPU work on the event loop (rendering, JSON, hashing...): what saturates a process.
SERVICE = f"""
import time
from fastapi import APIRouter
from chassis import ServiceSettings, create_app, serve

router = APIRouter()

@router.get("/work")
async def work() -> dict[str, bool]:
    until = time.perf_counter() + {WORK_MS / 1000}
    while time.perf_counter() < until:
        pass
    return {{"ok": True}}

serve(lambda: create_app(ServiceSettings(), routers=[router]))
"""
# The server reads request heads between event-loop turns, and a turn at the limit runs that many
# requests' CPU (20 x 5 ms): a request refused as its head is read waits for the rest of the turn
# in progress (half of one, on average). Refused by the app, it waited for a turn more (~2 turns:
# 185-260 ms p50 by the probe on a 2-core machine).
INITIAL_LIMIT = 20
SHED_ENV = {
    "SHED__LATENCY_TARGET_S": "0.1",
    "SHED__MAX_LOOP_LAG_S": "0.1",
    "SHED__INITIAL_LIMIT": str(INITIAL_LIMIT),
    "SHED__MIN_LIMIT": "4",
    "SHED__MAX_LIMIT": "200",
    "LOG_LEVEL": "INFO",  # the access lines give the server-side time of each answer
}
CLIENTS, LOAD_S, BASELINE_S = 300, 4.0, 3.0


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


class RssPeak:
    """The largest RSS of a process seen while the block runs, read every 0.1 s."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, rss_mib(self.pid))

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def server_ms(log: Path, status: int) -> list[float]:
    """The durations the service's access lines give for its answers of ``status``."""
    durations = []
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"http.duration_ms"' in line:
            record = json.loads(line)
            if record.get("http.status_code") == status:
                durations.append(float(record["http.duration_ms"]))
    return durations


def refusers(log: Path) -> Counter[str]:
    """Who wrote the access lines of the 503s: the server as it read the head, or the app's ASGI layer."""
    who: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"http.status_code": 503' in line:
            who["server" if json.loads(line)["path"].endswith("chassis/server.py") else "app"] += 1
    return who


def pct(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, len(ordered) * p // 100)], 2) if ordered else float("nan")


async def test_an_overloaded_service_sheds_fast_keeps_its_latency_and_recovers(
    redis_server: Any, tmp_path: Path, figures: Figures
) -> None:
    log = tmp_path / "service.log"
    with served_process(SERVICE, redis_url=redis_server.url, log=log, env=SHED_ENV) as service:
        pid = service.process.pid
        async with httpx.AsyncClient(base_url=service.url, timeout=5) as client:
            for _ in range(20):
                assert (await client.get("/work")).status_code == 200
            rss_before = rss_mib(pid)

            with RssPeak(pid) as rss:
                load = asyncio.create_task(
                    overload(f"{service.url}/work", clients=CLIENTS, seconds=LOAD_S, probe_every_s=0.01)
                )
                await asyncio.sleep(LOAD_S / 2)
                during = (await client.get("/ops/telemetry")).json()["shedding"]  # exempt: answers
                result = await load

            # after the load: every request answered again, and the limit regrows to its initial value
            after: list[int] = []
            recovered: dict[str, Any] = {}
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and recovered.get("limit", 0) < INITIAL_LIMIT:
                after += [(await client.get("/work")).status_code for _ in range(10)]
                recovered = (await client.get("/ops/telemetry")).json()["shedding"]
            rss_after = rss_mib(pid)

    # the same load on the same service with shedding off: what the accepted requests were spared
    unshed_env = {**SHED_ENV, "SHED__ENABLED": "false", "LOG_LEVEL": "WARNING"}
    with served_process(
        SERVICE, redis_url=redis_server.url, log=tmp_path / "unshed.log", env=unshed_env
    ) as plain:
        unshed = await overload(f"{plain.url}/work", clients=CLIENTS, seconds=BASELINE_S, probe_every_s=0.01)

    shed_server = server_ms(log, 503)
    ok_server = server_ms(log, 200)
    ok_probe, unshed_probe = result.percentiles("probe 2xx"), unshed.percentiles("probe 2xx")
    shed_client, shed_probe = result.percentiles("5xx", (50, 99)), result.percentiles("probe 5xx", (50, 99))
    refused = refusers(log)
    figures.add(
        f"load shedding: {CLIENTS} clients for {LOAD_S:g} s on a route burning {WORK_MS} ms of CPU",
        result.summary(),
        f"server-side (access log) ms: shed p50 {pct(shed_server, 50)} p99 {pct(shed_server, 99)}; "
        f"accepted p50 {pct(ok_server, 50)} p99 {pct(ok_server, 99)}",
        f"503s client-side ms: probe {shed_probe} ({len(result.latencies_ms.get('probe 5xx', ()))} of them), "
        f"crowd {shed_client} (its own loop saturated); refused as the head was read {refused['server']}, "
        f"by the app {refused['app']}",
        f"limit {during['limit']} with {during['in_flight']} in flight and loop lag {during['loop_lag_ms']} ms "
        f"mid-load; {recovered['limit']} after",
        f"RSS MiB: before {rss_before:.1f}, peak during {rss.peak:.1f}, after {rss_after:.1f}",
        f"shedding off, {BASELINE_S:g} s: {unshed.summary()}",
    )
    # overloaded: requests shed, each with Retry-After, none unanswered
    assert result.statuses[503] > 0, result.summary()
    assert result.statuses[200] > 0, result.summary()
    assert set(result.statuses) == {200, 503}, result.summary()
    assert result.retry_after == {"1": result.statuses[503]}
    # a refusal costs the server a fraction of a millisecond...
    assert statistics.median(shed_server) < 1.0, pct(shed_server, 50)
    # ...and is made as the request head is read: the client waits for the loop turn in progress,
    # not for a turn more behind the requests let in (how long: the figures above, not an assert)
    assert refused["server"] >= 0.9 * sum(refused.values()), refused
    assert len(result.latencies_ms.get("probe 5xx", ())) >= 10, result.summary()
    # ...and, connections open, an accepted request does not wait behind the whole crowd: as the
    # probe sees them (a process of its own; the crowd's figures include its own saturated loop),
    # half are answered sooner than half without shedding
    assert len(result.latencies_ms.get("probe 2xx", ())) >= 10, result.summary()
    # (without shedding the probe may get no answer in time at all: then nothing to compare)
    assert not unshed_probe or ok_probe["p50"] < unshed_probe["p50"], (result.summary(), unshed.summary())
    assert set(unshed.statuses) == {200}, unshed.summary()
    # one log line when shedding started, at most one per REPORT_EVERY_S after, none per request
    lines = [line for line in log.read_text().splitlines() if "load shedding" in line]
    assert 1 <= len(lines) <= 3, lines
    # and after the load: all 200, the limit back up
    assert set(after) == {200}, after
    assert recovered["limit"] >= INITIAL_LIMIT, recovered
    assert recovered["in_flight"] == 0
    assert rss.peak - rss_before < 64, (rss_before, rss.peak)
