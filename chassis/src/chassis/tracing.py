"""Process-wide tracing: OpenTelemetry to Zipkin, W3C trace context out, W3C or B3 accepted in.

Spans leave through a batch processor on its own thread; an unreachable Zipkin costs
counted export failures, never request latency.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx
from fastapi.telemetry import TelemetryConfig
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.utils import is_http_instrumentation_enabled
from opentelemetry.propagators.b3 import B3MultiFormat
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.paths import matcher
from chassis.settings import ServiceSettings

__all__ = [
    "NO_FASTAPI_TELEMETRY",
    "ServerSpans",
    "TracedTransport",
    "configure_tracing",
    "current_trace_id",
    "exporter_stats",
    "flush_spans",
    "untraced",
]

log = logging.getLogger(__name__)

# Health probes run every few seconds (tracing them would bury real traffic); an SSE stream
# would be one span as long as the browser tab stays open. An app adds its own (ServerSpans).
_UNTRACED_PATHS = ("/health/live", "/health/ready", "/stream")

# FastAPI's own telemetry (on by default once a tracer provider is set) would add a second SERVER
# span and three more per request (dependencies, endpoint, serialization) at twice ServerSpans'
# cost (``bench_gateway.py``): ``create_app`` turns it off.
NO_FASTAPI_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}

_provider: TracerProvider | None = None
_lock = threading.Lock()


class _CountingExporter(SpanExporter):
    """Wraps the Zipkin exporter: failures are counted and logged once per outage, not per batch."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.exported = 0
        self.failed = 0
        self._failing = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # connection refused, DNS, timeouts: all the same to us
            result = SpanExportResult.FAILURE
            reason = type(exc).__name__
        else:
            reason = "non-2xx answer"
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
            if self._failing:
                log.info("span export to Zipkin recovered")
            self._failing = False
        else:
            self.failed += len(spans)
            if not self._failing:
                log.warning("span export to Zipkin failing (%s); spans are dropped until it recovers", reason)
            self._failing = True
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _InboundOnly(TextMapPropagator):
    """Reads a format but never writes it: B3 is accepted in, W3C alone goes out."""

    def __init__(self, inner: TextMapPropagator) -> None:
        self.inner = inner

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter[CarrierT] = default_getter
    ) -> Context:
        return self.inner.extract(carrier, context, getter)

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return set()


_exporter: _CountingExporter | None = None


def configure_tracing(settings: ServiceSettings) -> TracerProvider:
    """Set the process's tracer provider once (OpenTelemetry allows one); later calls reuse it."""
    global _provider, _exporter
    with _lock:
        if _provider is not None:
            return _provider
        resource = Resource.create(
            {
                SERVICE_NAME: settings.service_name,
                SERVICE_VERSION: settings.version,
                "deployment.environment": settings.env,
                "service.instance.id": settings.effective_replica_id,
            }
        )
        sampler = ParentBased(TraceIdRatioBased(settings.tracing_sample_ratio))
        provider = TracerProvider(resource=resource, sampler=sampler)
        if settings.zipkin_endpoint:
            _exporter = _CountingExporter(ZipkinExporter(endpoint=settings.zipkin_endpoint, timeout=2))
            provider.add_span_processor(BatchSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
        # B3 first, W3C last: when a request carries both, the W3C context wins.
        propagate.set_global_textmap(
            CompositePropagator([_InboundOnly(B3MultiFormat()), TraceContextTextMapPropagator()])
        )
        RedisInstrumentor().instrument(tracer_provider=provider)
        _provider = provider
        return provider


class TracedTransport(httpx.AsyncBaseTransport):
    """A CLIENT span per outbound call, its context sent on (W3C ``traceparent``): the span
    opentelemetry-instrumentation-httpx records (named by the method; ``http.method``, ``http.url``,
    ``http.status_code``, credentials in the URL redacted; an error from 400 up, on an exception,
    and when cancelled, which upstream leaves unset), for about half its cost:
    that transport works out its attributes through the semantic-conventions machinery on every
    call (12% of a gateway's CPU under load, py-spy; ``bench_gateway.py``: +199 µs a call against
    +100 µs here). None inside ``suppress_instrumentation()``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, tracer_provider: trace.TracerProvider | None) -> None:
        self._inner = inner
        self._tracer = trace.get_tracer("chassis.http", tracer_provider=tracer_provider)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not is_http_instrumentation_enabled():  # (which asks is_instrumentation_enabled() too)
            return await self._inner.handle_async_request(request)
        url = request.url
        if url.userinfo:  # a service URL may carry credentials (SERVICE_URLS): never into a trace
            url = url.copy_with(username="REDACTED", password="REDACTED")
        attributes = {"http.method": request.method, "http.url": str(url)}
        with self._tracer.start_as_current_span(
            request.method, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            propagate.inject(request.headers)
            try:
                response = await self._inner.handle_async_request(request)
            except asyncio.CancelledError:  # the caller's time ran out: Zipkin shows the call failed
                span.set_status(StatusCode.ERROR, "cancelled: no longer awaited")
                raise
            span.set_attribute("http.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_status(StatusCode.ERROR)
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class ServerSpans:
    """A SERVER span per inbound request, in the trace its caller sent (W3C or B3): the span
    opentelemetry-instrumentation-fastapi records (``GET /products/{product_id}``; ``http.method``,
    ``http.scheme``, ``http.host``, ``http.flavor``, ``http.target``, ``http.url``,
    ``http.user_agent``, ``net.host.port``, ``net.peer.ip``, ``net.peer.port``, ``http.route``,
    ``http.status_code``; an error from 500 up), for about half its cost: that middleware
    matches the request against every route a second time to name the span, and works out its
    attributes through the semantic-conventions machinery on every request (``bench_gateway.py``).
    The span is named when the answer is done, from the route the router matched; a request
    answered before routing (404, and the edge's refusals: rate limit, deadline passed) by its
    method alone, as upstream names a 404 (``http.target`` says where it went).

    Every traced answer names its trace (``traceresponse: 00-<trace id>-<span id>-<flags>``) so
    a client (the storefront's footer) can link to it in Zipkin. Paths ``untraced`` accepts
    (``untraced_paths``) get no span."""

    def __init__(
        self, app: ASGIApp, tracer_provider: trace.TracerProvider | None, untraced: Callable[[str], bool]
    ) -> None:
        self.app = app
        self._tracer = trace.get_tracer("chassis.server", tracer_provider=tracer_provider)
        self._untraced = untraced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._untraced(scope["path"]) or not is_http_instrumentation_enabled():
            await self.app(scope, receive, send)
            return
        # the first of a repeated header, as upstream reads them
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(scope["headers"])
        }
        method, path, scheme = scope["method"], scope["path"], scope["scheme"]
        host = headers.get("host") or "{}:{}".format(*scope.get("server") or ("localhost", 80))
        query = scope.get("query_string")
        attributes: dict[str, str | int] = {
            "http.method": method,
            "http.scheme": scheme,
            "http.host": host,
            "http.flavor": scope.get("http_version", "1.1"),
            "http.target": path,
            "http.url": f"{scheme}://{host}{path}" + (f"?{query.decode('latin-1')}" if query else ""),
        }
        if server := scope.get("server"):
            attributes["net.host.port"] = server[1]
        if agent := headers.get("user-agent"):
            attributes["http.user_agent"] = agent
        if client := scope.get("client"):
            attributes["net.peer.ip"], attributes["net.peer.port"] = client[0], client[1]
        with self._tracer.start_as_current_span(
            method, context=propagate.extract(headers), kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            context = span.get_span_context()
            traceresponse = (
                f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}".encode()
                if context.is_valid
                else None
            )

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    span.set_attribute("http.status_code", status)
                    if status >= 500:
                        span.set_status(StatusCode.ERROR)
                    if traceresponse is not None:
                        message["headers"] = [
                            *message.get("headers", ()),
                            (b"traceresponse", traceresponse),
                            (b"access-control-expose-headers", b"traceresponse"),
                        ]
                await send(message)

            try:
                await self.app(scope, receive, send_traced)
            finally:
                if (route := getattr(scope.get("route"), "path", None)) is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)


def untraced(paths: Iterable[str]) -> Callable[[str], bool]:
    """The test for the paths that get no span: the chassis's own and ``paths`` (``/x`` that path
    alone, ``/x/*`` every path below ``/x/``; ``chassis.paths.matcher``)."""
    named = [*_UNTRACED_PATHS, *paths]
    if wrong := [path for path in named if not path.startswith("/")]:
        raise ValueError(f"an untraced path starts with /: {wrong}")
    return matcher(named)


def current_trace_id() -> str | None:
    """The 32-hex trace id of the current span (the one Zipkin shows), or None outside a trace."""
    ctx = trace.get_current_span().get_span_context()
    return trace.format_trace_id(ctx.trace_id) if ctx.is_valid else None


def exporter_stats() -> dict[str, Any]:
    exporter = _exporter
    if exporter is None:
        return {"enabled": False}
    return {"enabled": True, "exported_spans": exporter.exported, "failed_spans": exporter.failed}


def flush_spans(timeout_ms: int = 5000) -> bool:
    """Push buffered spans out now (tests, shutdown)."""
    provider = _provider
    return provider.force_flush(timeout_ms) if provider is not None else True
