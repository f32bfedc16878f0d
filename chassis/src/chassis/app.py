"""The app factory: every service is ``create_app(settings, ...)`` plus its routers.

Logging and tracing are configured here, once per process, before the app exists. The
lifespan owns every pool and client (one Redis pool, one HTTP client per downstream, the
breaker metrics publisher) and closes them on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import redis
import redis.asyncio as aioredis
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation

from chassis.breakers import BreakerRegistry, RollingCounts
from chassis.config_client import client_for
from chassis.config_view import config_view_router
from chassis.deadline import DeadlineMiddleware
from chassis.errors import install_error_handlers
from chassis.health import ReadyCheck, health_router
from chassis.http import Downstream
from chassis.limits import BodySizeLimit
from chassis.logging import configure_logging, log_stats, set_log_level, shutdown_logging
from chassis.middleware import RequestContextMiddleware
from chassis.openapi import install_openapi
from chassis.redis_clients import async_redis, sync_redis
from chassis.refresh import Refresher
from chassis.registry import announce_forever
from chassis.server import server_options
from chassis.settings import LiveSettings, ServiceSettings
from chassis.shedding import LoadShedder
from chassis.shedding import install as install_shedding
from chassis.state import ChassisState, chassis_state, resource
from chassis.tracing import (
    NO_FASTAPI_TELEMETRY,
    ServerSpans,
    configure_tracing,
    exporter_stats,
    flush_spans,
    untraced,
)

__all__ = ["METRICS_CHANNEL", "METRICS_KEY_PREFIX", "create_app", "serve"]

log = logging.getLogger(__name__)

# Where breaker metrics go once a second (the Turbine role); the ops-dashboard reads them.
METRICS_KEY_PREFIX = "msa:metrics"
METRICS_CHANNEL = "msa:metrics"
METRICS_INTERVAL_S = 1.0
METRICS_TTL_S = 10
# Requests a process answers at once without doing their work, counted for the dashboard:
# over a rate limit (429), shed under overload (503), or past their deadline (504).
EDGE_EVENTS = ("rate_limited", "shed", "deadline_exceeded")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(
    settings: ServiceSettings,
    *,
    title: str | None = None,
    description: str = "",
    routers: Sequence[APIRouter] = (),
    downstreams: Mapping[str, str] | None = None,
    ready_checks: Mapping[str, ReadyCheck] | None = None,
    lifespan: Lifespan | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    max_body_bytes: int | None = None,
    untraced_paths: Sequence[str] = (),
) -> FastAPI:
    """Build a service.

    ``downstreams`` maps a callee name to its base URL; each becomes a ``Downstream`` in
    ``chassis_state(app).downstreams``. ``lifespan`` opens the service's own resources inside the
    chassis ones. ``max_body_bytes`` refuses larger request bodies with 413 problem+json
    (``BodySizeLimit``) before they are read. ``untraced_paths`` (a page's files and pictures: its
    API calls are what to follow) get no span and log their access line at DEBUG unless answered
    4xx/5xx, as health probes do: ``/x`` that path alone, ``/x/*`` every path under ``/x/``; limits
    apply as to any request. ``tracer_provider`` and ``transport`` are for tests.
    """
    configure_logging(settings)
    provider = tracer_provider or configure_tracing(settings)
    live: LiveSettings[ServiceSettings] = LiveSettings(settings)
    live.subscribe(lambda old, new: set_log_level(new.log_level) if old.log_level != new.log_level else None)

    @contextlib.asynccontextmanager
    async def chassis_lifespan(app: FastAPI) -> AsyncIterator[None]:
        current = live.current
        state.redis = async_redis(
            current.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0, health_check_interval=30
        )
        # Breaker state is written on failures and transitions only (read from memory): short
        # timeouts so a Redis outage costs little even then.
        breaker_redis = (
            sync_redis(current.redis_url, socket_timeout=0.1, socket_connect_timeout=0.1)
            if current.breaker.shared
            else None
        )
        registry = state.breakers  # made with the app; a restarted lifespan re-adds its breakers by name
        state.downstreams = {
            callee: Downstream(
                caller=current.service_name,
                callee=callee,
                base_url=url,
                live=live,
                registry=registry,
                breaker_redis=breaker_redis,
                tracer_provider=provider,
                transport=transport,
            )
            for callee, url in (downstreams or {}).items()
        }
        state.ready_checks = {"redis": _redis_check(state.redis), **(ready_checks or {})}
        stop_announcing = asyncio.Event()
        # The chassis's own Redis bookkeeping is no one's trace: without this, each of these
        # loops would send Zipkin a root span every second (a task keeps the context it was made in).
        with suppress_instrumentation():
            publisher = asyncio.create_task(_publish_metrics(state), name="breaker-metrics")
            sharing = (
                asyncio.create_task(registry.share(current.redis_url), name="breaker-state")
                if breaker_redis is not None
                else None
            )
            announcer = asyncio.create_task(
                announce_forever(state.redis, current, stop_announcing), name="registry"
            )
        refresher = (  # live config refresh, when settings came from config-service
            asyncio.create_task(state.refresher.run(current.redis_url), name="config-refresh")
            if state.refresher is not None
            else None
        )
        log.info("%s %s starting (env=%s)", current.service_name, current.version, current.env)
        try:
            if lifespan is None:
                yield
            else:
                async with lifespan(app):
                    yield
        finally:
            stop_announcing.set()  # lets a registry write in flight finish (its socket closes cleanly)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(announcer), 2.0)
            for task in (publisher, sharing, announcer, refresher):
                if task is not None:
                    task.cancel()
                    try:
                        await task
                    except asyncio.CancelledError:
                        pass
                    except Exception:  # it died earlier: say so, and still close everything below
                        log.exception("background task %s had stopped with an error", task.get_name())
            for client in state.downstreams.values():
                await client.aclose()
            await state.redis.aclose()
            if breaker_redis is not None:
                breaker_redis.close()
            log.info("%s stopped", current.service_name)
            await asyncio.to_thread(flush_spans)

    app = FastAPI(
        title=title or settings.service_name,
        description=description,
        version=settings.version,
        lifespan=chassis_lifespan,
        # No "add or drop the trailing slash" redirects: Starlette builds their absolute Location
        # from the request's Host header, so anyone could make a service redirect elsewhere.
        # /path/ is a 404 problem+json like any other unknown path.
        redirect_slashes=False,
        telemetry=NO_FASTAPI_TELEMETRY,
    )
    config = client_for(settings)
    app.state.chassis = state = ChassisState(
        live=live,
        breakers=BreakerRegistry(),
        edge=RollingCounts(EDGE_EVENTS),
        refresher=Refresher(config, live) if config is not None else None,
        ready_checks=dict(ready_checks or {}),
    )
    install_error_handlers(app)
    install_openapi(app)  # every operation documents its problem+json answers and security
    app.add_middleware(DeadlineMiddleware)  # inside the request context: a drop is in the access log
    app.add_middleware(RequestContextMiddleware, quiet_paths=untraced_paths)
    app.include_router(health_router())
    app.include_router(_ops_router())
    app.include_router(config_view_router())
    for router in routers:
        app.include_router(router)
    if max_body_bytes is not None:
        app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    # Outside the request context and deadline: its span is current for their log lines and tags.
    app.add_middleware(ServerSpans, tracer_provider=provider, untraced=untraced(untraced_paths))
    # Last: the outermost layer, before tracing (a shed request costs no span; chassis.shedding).
    install_shedding(app)
    return app


def serve(factory: Callable[[], FastAPI]) -> None:
    """The console-script entry point of every service (what the Dockerfile runs).

    Forwarded headers (``X-Forwarded-For``/``-Proto``) rewrite the client address only when the
    peer is one of ``settings.trusted_proxies`` (none by default). uvicorn alone would trust
    127.0.0.1 (or ``FORWARDED_ALLOW_IPS``), which in ``msa dev up`` is every client.
    """
    app = factory()
    settings: ServiceSettings = chassis_state(app).live.current
    trusted = list(settings.trusted_proxies)
    try:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,  # the chassis configured logging already
            access_log=False,  # and writes its own access line per request
            server_header=False,
            timeout_graceful_shutdown=5,
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted or [],  # never None: uvicorn would read its own default
            # request head size and time, connections per process (SERVER__..., chassis.server),
            # and shedding decided as a request head is read (chassis.shedding)
            **server_options(settings.server, resource(app, LoadShedder)),
        )
    finally:
        shutdown_logging()


def _ops_router() -> APIRouter:
    router = APIRouter(prefix="/ops", tags=["ops"])

    @router.get("/telemetry", summary="Breakers, dropped log records and span exports of this process")
    async def telemetry(request: Request) -> dict[str, Any]:
        return {
            "breakers": chassis_state(request.app).breakers.snapshot(),
            "edge": _edge_snapshot(chassis_state(request.app)),
            "logging": log_stats(),
            "shedding": resource(request.app, LoadShedder).snapshot(),
            "tracing": exporter_stats(),
        }

    return router


def _redis_check(client: aioredis.Redis) -> ReadyCheck:
    async def check() -> dict[str, Any] | None:
        await client.ping()
        return None

    return check


def _edge_snapshot(state: ChassisState) -> dict[str, Any]:
    return {"window_s": state.edge.window_s, "counts": state.edge.counts()}


async def _publish_metrics(state: ChassisState) -> None:
    """Once a second: this replica's breaker snapshot and edge counts under a key that expires if
    we stop. A service with no breakers publishes too once it has refused a request."""
    client, registry = state.redis, state.breakers
    failing = False
    while True:
        await asyncio.sleep(METRICS_INTERVAL_S)
        settings = state.live.current
        edge = _edge_snapshot(state)
        if not any(True for _ in registry) and not any(edge["counts"].values()):
            continue
        replica = settings.effective_replica_id
        payload = json.dumps(
            {
                "service": settings.service_name,
                "replica": replica,
                "breakers": registry.snapshot(),
                "edge": edge,
            }
        )
        try:
            async with client.pipeline(transaction=False) as pipe:
                pipe.set(f"{METRICS_KEY_PREFIX}:{settings.service_name}:{replica}", payload, ex=METRICS_TTL_S)
                pipe.publish(METRICS_CHANNEL, payload)
                await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            if not failing:
                log.warning("breaker metrics not published: Redis unreachable (%s)", type(exc).__name__)
            failing = True
        else:
            failing = False
