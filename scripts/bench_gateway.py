"""What a guarded, traced call costs, side by side in one run: own CPU per request and throughput.

Starts the topology the way ``msa dev up`` does (free ports, a private redis-server, a local span
sink standing in for Zipkin, so every service exports its spans as it would), plus the reference
points of ``msa_testing.bench_apps`` and Debian's nginx when installed. Then, for each path, wrk
runs 16 connections for ``--seconds`` (after a warm-up) while the CPU time of the process under
test is read from /proc; then one connection for the latency at rest. Medians of ``--repeat`` runs.

    uv run python scripts/bench_gateway.py [--repeat 3] [--seconds 5]   # needs wrk (apt-get install wrk)

Paths (the same catalog product unless said): catalog direct; nginx ``proxy_pass``; a bare
FastAPI + httpx proxy, on httpx's own transport and on the chassis's (aiohttp underneath); a
chassis route making one guarded call; gateway-web's product page (catalog, inventory, reviews);
gateway-mobile's listing; and the product page again with breaker state not shared, with no
traces recorded (``TRACING_SAMPLE_RATIO=0``), and with both. Then a product page's CPU in every
process it touches. First, in-process: what a client span adds to an httpx call, recorded by
opentelemetry-instrumentation-httpx's transport and by the chassis's own (``TracedTransport``), and
what a server span adds to a request, recorded by opentelemetry-instrumentation-fastapi and by the
chassis's own (``ServerSpans``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from msa_cli.devstack import DevStack, free_port
from msa_testing.bench import (
    BELOW_CAPACITY,
    background_process,
    cpu_seconds,
    nginx_proxy,
    span_sink,
    start_variant,
    wait_ok,
    wrk,
)

REPO = Path(__file__).resolve().parents[1]
PRODUCT = "p-1001"
PAGE_PATH = "gateway-web product page (3 calls)"


@dataclass
class Target:
    name: str
    url: str
    pids: list[int]  # whose CPU is "own" CPU (nginx: master and worker)


@dataclass
class Figures:
    cpu_ms: float  # own CPU per request
    rps: float  # requests per second at 16 connections
    p50_ms: float  # latency at one connection


def measure(target: Target, seconds: float) -> Figures:
    wrk(target.url, 16, 1)  # warm-up: pools, caches, lazy imports
    before = cpu_seconds(target.pids)
    done, rps, _ = wrk(target.url, 16, seconds)
    cpu_ms = (cpu_seconds(target.pids) - before) / done * 1000
    _, _, p50 = wrk(target.url, 1, max(2.0, seconds / 2))
    return Figures(cpu_ms=cpu_ms, rps=rps, p50_ms=p50 or float("nan"))


def _dropping_provider() -> TracerProvider:
    """Spans batched, as in a service, to an exporter that drops them; a queue no run fills (a full
    queue drops spans unprocessed, which would flatter whoever makes the most). Whoever measures
    calls ``force_flush()`` inside the timed part: each pays for its own spans' export."""

    class Dropped(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped(), max_queue_size=200_000))
    return provider


def client_span_cost(calls: int = 20_000) -> str:
    """CPU per httpx call (µs) on a canned answer: without a span, with opentelemetry-instrumentation-
    httpx's, with ``chassis.tracing.TracedTransport``."""
    from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport

    from chassis.tracing import TracedTransport

    canned = httpx.MockTransport(lambda request: httpx.Response(200, json={}))

    async def per_call_us(transport: httpx.AsyncBaseTransport, provider: TracerProvider) -> float:
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog:8000") as client:
            for _ in range(500):  # warm-up
                await client.get(f"/products/{PRODUCT}")
            provider.force_flush()
            started = time.process_time()
            for _ in range(calls):
                await client.get(f"/products/{PRODUCT}")
            provider.force_flush()
            return (time.process_time() - started) / calls * 1e6

    async def all_three() -> tuple[float, float, float]:
        providers = [_dropping_provider() for _ in range(3)]
        bare = await per_call_us(canned, providers[0])
        upstream = await per_call_us(
            AsyncOpenTelemetryTransport(canned, tracer_provider=providers[1]), providers[1]
        )
        ours = await per_call_us(TracedTransport(canned, providers[2]), providers[2])
        for provider in providers:
            provider.shutdown()
        return bare, upstream, ours

    bare, upstream, ours = asyncio.run(all_three())
    return (
        f"a client span per httpx call (CPU, {calls} calls on a canned answer): none {bare:.0f} µs; "
        f"opentelemetry-instrumentation-httpx +{upstream - bare:.0f} µs; "
        f"chassis TracedTransport +{ours - bare:.0f} µs"
    )


def server_span_cost(requests: int = 2_000, rounds: int = 5, routes: int = 20) -> str:
    """CPU per request (µs) a FastAPI app of ``routes`` routes answers in-process (no socket; the
    requested route half-way down the list, as gateway-web's product route is; the median of
    ``rounds`` rounds taken in turn, each variant with its own span pipeline): without a span;
    with opentelemetry-instrumentation-fastapi's; with FastAPI's own telemetry, as it comes
    (operation spans too) and with its server span alone; with ``chassis.tracing.ServerSpans``."""
    from fastapi import FastAPI
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    from chassis.tracing import NO_FASTAPI_TELEMETRY, ServerSpans, untraced

    providers = {
        name: _dropping_provider()
        for name in (
            "none",
            "opentelemetry-instrumentation-fastapi",
            "FastAPI's own telemetry",
            "its server span alone",
            "chassis ServerSpans",
        )
    }

    def app(telemetry: TelemetryConfig = NO_FASTAPI_TELEMETRY) -> FastAPI:
        made = FastAPI(telemetry=telemetry)
        for n in range(routes - 1):
            if n == routes // 2:
                made.add_api_route("/products/{product_id}", lambda product_id: {"id": product_id})
            made.add_api_route(f"/other-{n}/{{item_id}}", lambda item_id: {"id": item_id}, methods=["GET"])
        return made

    contrib, ours = app(), app()
    FastAPIInstrumentor.instrument_app(
        contrib,
        tracer_provider=providers["opentelemetry-instrumentation-fastapi"],
        exclude_spans=["receive", "send"],
    )
    ours.add_middleware(ServerSpans, tracer_provider=providers["chassis ServerSpans"], untraced=untraced([]))
    apps = {
        "none": app(),
        "opentelemetry-instrumentation-fastapi": contrib,
        "FastAPI's own telemetry": app({"tracer_provider": providers["FastAPI's own telemetry"]}),
        "its server span alone": app(
            {
                "tracer_provider": providers["its server span alone"],
                "operation_spans": False,
                "metrics": False,
                "logs": False,
            }
        ),
        "chassis ServerSpans": ours,
    }
    path = f"/products/{PRODUCT}"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"catalog:8000"),
            (b"traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: object) -> None:
        return None

    async def per_request_us(target: FastAPI, provider: TracerProvider) -> float:
        started = time.process_time()
        for _ in range(requests):
            await target(dict(scope), receive, send)
        provider.force_flush()
        return (time.process_time() - started) / requests * 1e6

    async def every_round() -> dict[str, list[float]]:
        for name, target in apps.items():
            for _ in range(300):  # warm-up
                await target(dict(scope), receive, send)
            providers[name].force_flush()
        taken: dict[str, list[float]] = {name: [] for name in apps}
        for _ in range(rounds):
            for name, target in apps.items():
                taken[name].append(await per_request_us(target, providers[name]))
        return taken

    medians = {name: statistics.median(us) for name, us in asyncio.run(every_round()).items()}
    for provider in providers.values():
        provider.shutdown()
    bare = medians.pop("none")
    return (
        f"a server span per request (CPU, {rounds} x {requests} requests in-process, {routes} routes): "
        f"none {bare:.0f} µs; " + "; ".join(f"{name} +{us - bare:.0f} µs" for name, us in medians.items())
    )


def cpu_by_process(url: str, pids: dict[str, int], seconds: float) -> dict[str, float]:
    """CPU per request (ms) of each of these processes while wrk sends ``url`` at 16 connections."""
    wrk(url, 16, 1)
    before = {name: cpu_seconds([pid]) for name, pid in pids.items()}
    done, _, _ = wrk(url, 16, seconds)
    return {name: (cpu_seconds([pid]) - before[name]) / done * 1000 for name, pid in pids.items()}


def nginx(stack: ExitStack, state: Path, catalog_port: int) -> Target | None:
    proxy = nginx_proxy(stack, state, "catalog", [catalog_port])
    if proxy is None:
        return None
    url = f"http://127.0.0.1:{proxy.port}/products/{PRODUCT}"
    wait_ok(url)
    return Target("nginx proxy_pass -> catalog", url, proxy.pids)


def reference_app(stack: ExitStack, state: Path, kind: str, label: str, *args: str) -> Target:
    port = free_port()
    command = [sys.executable, "-m", "msa_testing.bench_apps", kind, str(port), *args]
    process = background_process(stack, command, state / "logs" / f"bench-{kind}.log")
    url = f"http://127.0.0.1:{port}/products/{PRODUCT}"
    wait_ok(url)
    return Target(label, url, [process.pid])


def gateway_variant(stack: DevStack, name: str, env: dict[str, str]) -> int:
    """Another gateway-web process with ``env`` on top of its own: returns its port."""
    return start_variant(stack, "gateway-web", name, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per path; medians are printed")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each 16-connection run")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_gateway needs wrk: apt-get install -y wrk (bash scripts/test.sh installs it)")
    span_costs = [client_span_cost(), server_span_cost()]

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        state = Path(tmp)
        (state / "logs").mkdir()
        sink = stack.enter_context(span_sink())
        dev = DevStack(
            compose_file=REPO / "docker-compose.yml",
            state_dir=state,
            free_ports=True,
            zipkin_url=sink,
            env_overrides={"*": BELOW_CAPACITY},
        )
        dev.plan()
        stack.callback(dev.stop)
        dev.start()
        dev.wait_ready(timeout_s=180)
        variants = {
            "gateway-web-local-breakers": {"BREAKER__SHARED": "false"},
            "gateway-web-unsampled": {"TRACING_SAMPLE_RATIO": "0"},
            "gateway-web-bare": {"BREAKER__SHARED": "false", "TRACING_SAMPLE_RATIO": "0"},
        }
        ports = {name: gateway_variant(dev, name, env) for name, env in variants.items()}
        catalog = dev.services["catalog"]
        assert catalog.process is not None
        pid = {name: service.process.pid for name, service in dev.services.items() if service.process}
        zipkin_endpoint = sink + "/api/v2/spans"

        targets = [Target("catalog direct", f"{catalog.url}/products/{PRODUCT}", [pid["catalog"]])]
        proxied = nginx(stack, state, catalog.port)
        if proxied is not None:
            targets.append(proxied)
        targets.append(reference_app(stack, state, "bare", "bare FastAPI + httpx proxy", catalog.url))
        targets.append(
            reference_app(stack, state, "bare-aiohttp", "bare proxy, httpx on chassis.transport", catalog.url)
        )
        targets.append(
            reference_app(
                stack, state, "chassis", "chassis route, one guarded call", catalog.url, dev.redis_url or "",
                zipkin_endpoint,
            )
        )  # fmt: skip
        web, mobile = dev.services["gateway-web"], dev.services["gateway-mobile"]
        targets += [
            Target(PAGE_PATH, f"{web.url}/api/products/{PRODUCT}", [pid["gateway-web"]]),
            Target("gateway-mobile listing (3 calls)", f"{mobile.url}/m/products?limit=20", [pid["gateway-mobile"]]),
        ]  # fmt: skip
        for name, label in (
            ("gateway-web-local-breakers", "  page, breaker state not shared"),
            ("gateway-web-unsampled", "  page, no traces recorded"),
            ("gateway-web-bare", "  page, both"),
        ):
            targets.append(
                Target(label, f"http://127.0.0.1:{ports[name]}/api/products/{PRODUCT}", [pid[name]])
            )

        runs: dict[str, list[Figures]] = {target.name: [] for target in targets}
        for _ in range(options.repeat):
            for target in targets:  # interleaved: a drift in the machine hits every path alike
                runs[target.name].append(measure(target, options.seconds))
        callees = ("gateway-web", "catalog", "inventory", "reviews")
        page_url = f"{web.url}/api/products/{PRODUCT}"
        page_cpu = cpu_by_process(page_url, {name: pid[name] for name in callees}, options.seconds)

    median = {
        name: Figures(*(statistics.median(getattr(f, field) for f in figures) for field in ("cpu_ms", "rps", "p50_ms")))
        for name, figures in runs.items()
    }  # fmt: skip
    cores = os.cpu_count()
    print(
        f"\nGET the same product, wrk 16 connections x {options.seconds:g} s, then 1 connection; "
        f"medians of {options.repeat}; {cores} cores, everything on this machine"
    )
    print(f"{'path':<40} {'own CPU/request':>16} {'requests/s':>11} {'p50 at c=1':>11}")
    for name, figures in median.items():
        print(f"{name:<40} {figures.cpu_ms:13.2f} ms {figures.rps:11.0f} {figures.p50_ms:8.2f} ms")
    bare, chassis = median["bare FastAPI + httpx proxy"], median["chassis route, one guarded call"]
    same_transport = median["bare proxy, httpx on chassis.transport"]
    page, direct = median[PAGE_PATH], median["catalog direct"]
    # each repetition measured both within a minute or two: the spread the machine's drift leaves
    ratios = ", ".join(
        f"{p.rps / d.rps:.2f}" for p, d in zip(runs[PAGE_PATH], runs["catalog direct"], strict=True)
    )
    print(
        f"\nchassis route / bare proxy, own CPU: {chassis.cpu_ms / bare.cpu_ms:.2f}x "
        f"({chassis.cpu_ms / same_transport.cpu_ms:.2f}x the bare proxy on the same transport)\n"
        f"product page: {page.cpu_ms:.2f} ms of gateway CPU per page; "
        f"{page.rps:.0f} pages/s = {page.rps / direct.rps:.2f} of direct catalog throughput (each run: {ratios})"
    )
    print(*span_costs, sep="\n")
    total = sum(page_cpu.values())
    print(
        "a product page's CPU, every process it touches (one more run): "
        + ", ".join(f"{name} {ms:.2f} ms" for name, ms in page_cpu.items())
        + f"; {total:.1f} ms in all, the gateway's share {page_cpu['gateway-web'] / total:.0%}"
        f" ({cores} cores: at most {1000 * (cores or 1) / total:.0f} pages/s)"
    )


if __name__ == "__main__":
    main()
