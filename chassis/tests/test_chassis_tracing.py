"""Spans for inbound and outbound calls, W3C out, B3 in, and a dead Zipkin that costs no request."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from chassis import ServiceSettings, create_app, downstream
from chassis.http import Downstream
from chassis.testing import running_app
from chassis.tracing import TracedTransport, _CountingExporter, configure_tracing
from msa_cli.devstack import free_port
from msa_testing.logs import Collect
from msa_testing.servers import FlakyServer


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/relay")
    async def relay(callee: Annotated[Downstream, Depends(downstream("callee"))]) -> dict[str, object]:
        return dict(await callee.get_json("/x"))

    return router


def _recording() -> tuple[InMemorySpanExporter, TracerProvider]:
    """A tracer provider whose spans are kept, each as it ends, by the exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter, provider


def _w3c(span: ReadableSpan) -> str:
    """The span as a W3C ``traceparent`` (or ``traceresponse``) names it."""
    c = span.context
    assert c is not None
    return f"00-{c.trace_id:032x}-{c.span_id:016x}-{c.trace_flags:02x}"


def _settings(redis_url: str) -> ServiceSettings:
    return ServiceSettings(service_name="tracer", env="test", redis_url=redis_url, zipkin_endpoint=None)


async def test_inbound_and_outbound_spans_with_w3c_out_and_b3_in(server: FlakyServer, redis_url: str) -> None:
    configure_tracing(_settings(redis_url))  # installs the process-wide propagators
    exporter, provider = _recording()
    app = create_app(
        _settings(redis_url),
        routers=[_router()],
        downstreams={"callee": server.url},
        tracer_provider=provider,
    )
    trace_id = secrets.token_hex(16)
    b3 = {"X-B3-TraceId": trace_id, "X-B3-SpanId": secrets.token_hex(8), "X-B3-Sampled": "1"}
    async with running_app(app) as client:
        response = await client.get("/relay", headers=b3)
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    assert {format(s.context.trace_id, "032x") for s in spans} == {trace_id}, "B3 accepted inbound"
    kinds = sorted(s.kind.name for s in spans)
    assert kinds == ["CLIENT", "SERVER"]
    outbound = server.last_headers
    assert outbound["traceparent"].split("-")[1] == trace_id, "W3C trace context goes out"
    assert "x-b3-traceid" not in outbound, "B3 is accepted in, not sent out"


async def test_the_server_span_names_the_route_tags_the_answer_and_marks_a_failure(redis_url: str) -> None:
    exporter, provider = _recording()
    router = APIRouter()

    @router.get("/items/{item_id}")
    @router.post("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        if item_id == "broken":
            raise RuntimeError("a bug")
        return {"id": item_id}

    app = create_app(_settings(redis_url), routers=[router], tracer_provider=provider)
    async with running_app(app) as client:
        found = await client.get("/items/i-1", params={"q": "x"}, headers={"User-Agent": "probe/1"})
        missing = await client.get("/nowhere")
        broken = await client.get("/items/broken")
        late = await client.post("/items/i-1", headers={"X-Deadline-Ms": "0"})  # refused before routing
    answers = (found, missing, broken, late)
    assert [a.status_code for a in answers] == [200, 404, 500, 504]
    spans = exporter.get_finished_spans()
    assert [(s.name, s.kind.name, s.status.status_code.name) for s in spans] == [
        ("GET /items/{item_id}", "SERVER", "UNSET"),
        ("GET", "SERVER", "UNSET"),  # no route matched: the method alone, as upstream names it
        ("GET /items/{item_id}", "SERVER", "ERROR"),
        ("POST", "SERVER", "ERROR"),  # refused before routing: the method alone
    ]
    attributes = dict(spans[0].attributes or {})
    assert attributes.pop("net.peer.port") > 0
    assert attributes == {
        "http.method": "GET",
        "http.scheme": "http",
        "http.host": attributes["http.host"],  # whatever the test client sent
        "http.flavor": "1.1",
        "http.target": "/items/i-1",
        "http.url": f"http://{attributes['http.host']}/items/i-1?q=x",
        "net.host.port": attributes["net.host.port"],
        "http.user_agent": "probe/1",
        "net.peer.ip": "127.0.0.1",
        "http.route": "/items/{item_id}",
        "http.status_code": 200,
    }
    assert [event.name for event in spans[2].events] == ["exception"]
    # each answer names its own span, so a page can link to its trace in Zipkin
    for response, span in zip(answers, spans, strict=True):
        assert response.headers["traceresponse"] == _w3c(span)


async def test_the_deadline_a_request_arrives_with_is_a_tag_of_its_server_span(
    server: FlakyServer, redis_url: str
) -> None:
    exporter, provider = _recording()
    app = create_app(
        _settings(redis_url),
        routers=[_router()],
        downstreams={"callee": server.url},
        tracer_provider=provider,
    )
    async with running_app(app) as client:
        assert (await client.get("/relay", headers={"X-Deadline-Ms": "750"})).status_code == 200
    (inbound,) = [span for span in exporter.get_finished_spans() if span.kind.name == "SERVER"]
    assert inbound.attributes is not None
    assert inbound.attributes["deadline.remaining_ms"] == 750
    assert 0 < int(server.last_headers["x-deadline-ms"]) <= 750, "what is left of it goes on"


async def test_unreachable_zipkin_costs_no_request(server: FlakyServer, redis_url: str) -> None:
    exporter = _CountingExporter(
        ZipkinExporter(endpoint=f"http://127.0.0.1:{free_port()}/api/v2/spans", timeout=1)
    )
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    app = create_app(
        _settings(redis_url),
        routers=[_router()],
        downstreams={"callee": server.url},
        tracer_provider=provider,
    )
    async with running_app(app) as client:
        statuses = [(await client.get("/relay")).status_code for _ in range(20)]
    assert statuses == [200] * 20
    provider.force_flush()
    assert exporter.failed >= 40, "every span (20 server + 20 client) is counted as dropped"
    assert exporter.exported == 0
    provider.shutdown()


async def test_untraced_paths_get_no_span_and_a_debug_access_line_and_every_other_path_does(
    redis_url: str,
) -> None:
    exporter, provider = _recording()
    router = APIRouter()

    @router.get("/")
    @router.get("/files/{name}")
    @router.get("/api/{rest:path}")
    async def answer() -> dict[str, str]:
        return {}

    settings = _settings(redis_url).model_copy(update={"log_level": "DEBUG"})
    app = create_app(settings, routers=[router], tracer_provider=provider, untraced_paths=("/", "/files/*"))
    untraced = ["/", "/files/app.js", "/health/live"]
    traced = ["/api/x", "/api/files/app.js", "/api/health/live", "/api/stream"]  # anchored, not searched
    access = Collect(logging.DEBUG)
    logging.getLogger("access").addHandler(access)
    try:
        async with running_app(app) as client:
            for path in untraced + traced:
                assert (await client.get(path)).status_code == 200, path
            assert (await client.get("/files/no/such")).status_code == 404
    finally:
        logging.getLogger("access").removeHandler(access)
        logging.getLogger().setLevel(logging.INFO)  # as the next test's service expects
    levels = {getattr(r, "http.path"): logging.getLevelName(r.levelno) for r in access.records}
    assert levels == {
        **dict.fromkeys(untraced, "DEBUG"),
        **dict.fromkeys(traced, "INFO"),
        "/files/no/such": "INFO",  # untraced, but a 4xx or 5xx is worth its line
    }
    paths = sorted(
        str((s.attributes or {}).get("url.path") or (s.attributes or {}).get("http.target"))
        for s in exporter.get_finished_spans()
    )
    assert paths == sorted(traced)


def test_an_untraced_path_is_a_path(redis_url: str) -> None:
    with pytest.raises(ValueError, match="untraced path starts with /"):
        create_app(_settings(redis_url), tracer_provider=TracerProvider(), untraced_paths=("files/*",))


async def test_the_client_span_names_the_call_marks_errors_and_is_off_when_suppressed() -> None:
    exporter, provider = _recording()
    sent: list[str | None] = []  # the traceparent each call carried as it was sent

    async def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("traceparent"))
        if request.url.path == "/down":
            raise httpx.ConnectError("refused", request=request)
        if request.url.path == "/slow":
            await asyncio.sleep(5)
        return httpx.Response(503 if request.url.path == "/busy" else 200)

    transport = TracedTransport(httpx.MockTransport(answer), provider)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc:pw-1@catalog:8000") as client:
        await client.get("/products/p-1", params={"x": "1"})
        await client.get("/busy")
        with pytest.raises(httpx.ConnectError):
            await client.get("/down")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):  # as Downstream waits at most its budget
                await client.get("/slow")
        with suppress_instrumentation():
            await client.get("/bookkeeping")
    spans = exporter.get_finished_spans()
    assert [(s.name, s.kind.name, s.status.status_code.name) for s in spans] == [
        ("GET", "CLIENT", "UNSET"),
        ("GET", "CLIENT", "ERROR"),  # a 5xx
        ("GET", "CLIENT", "ERROR"),  # no answer
        ("GET", "CLIENT", "ERROR"),  # no answer in time
    ]
    assert dict(spans[0].attributes or {}) == {
        "http.method": "GET",
        "http.url": "http://REDACTED:REDACTED@catalog:8000/products/p-1?x=1",  # never the password
        "http.status_code": 200,
    }
    # each traced call carries its own span (and trace) as the callee's parent; the suppressed one none
    assert sent == [_w3c(span) for span in spans] + [None]
