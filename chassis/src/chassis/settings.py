"""Service settings: one pydantic-settings base every member extends.

Precedence, highest first: environment variables, remote configuration (config-service),
code defaults. Remote values arrive as Spring-style flat dotted keys (``breaker.fail_max``)
and are expanded into the nested models below.
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, Field, PrivateAttr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from chassis.keys import unflatten

__all__ = [
    "BreakerSettings",
    "BulkheadSettings",
    "DeadlineSettings",
    "ChaosSettings",
    "Environment",
    "HttpSettings",
    "LiveSettings",
    "RemoteSettingsSource",
    "RetrySettings",
    "RouteChaos",
    "ServerSettings",
    "ServiceSettings",
    "ShedSettings",
]

Environment = Literal["development", "test", "production"]

# The dev defaults below are only for a laptop; ServiceSettings refuses them in production.
DEV_DEFAULT_MARK = "dev-only"


class BreakerSettings(BaseModel):
    """Circuit-breaker thresholds, shared by every downstream of a service (re-read on refresh)."""

    fail_max: int = Field(5, ge=1, description="consecutive failures that open the circuit")
    reset_timeout_s: float = Field(10.0, gt=0, description="seconds open before a trial call")
    success_threshold: int = Field(1, ge=1, description="trial successes that close it again")
    shared: bool = Field(
        True,
        description="replicas share each circuit through Redis (written on failures and transitions "
        "only); false: each process keeps its own (read once, at start)",
    )


class HttpSettings(BaseModel):
    """Timeouts for outbound calls (re-read on refresh)."""

    timeout_s: float = Field(2.0, gt=0, description="whole-call budget for one downstream request")
    connect_timeout_s: float = Field(0.5, gt=0)


class BulkheadSettings(BaseModel):
    """A bound on the calls one service has in flight to each of its downstreams (re-read on refresh).

    A call over it waits up to ``queue_wait_s`` for one of ``queue`` places, else is refused at once
    (``rejected``) and takes its fallback like a short-circuited call: a slow downstream holds at
    most ``max_concurrent`` of the caller's requests, never all of them."""

    max_concurrent: int = Field(64, ge=1, description="calls in flight to one downstream, per process")
    callees: dict[str, int] = Field(
        default_factory=dict, description="callee -> its own max_concurrent (bulkhead.callees.inventory: 8)"
    )
    queue: int = Field(0, ge=0, description="calls that may wait for a place; 0: refuse at once")
    queue_wait_s: float = Field(0.05, ge=0, description="the longest a call waits in the queue")


class RetrySettings(BaseModel):
    """Retries of idempotent calls (GET/HEAD, or any request carrying an ``Idempotency-Key``) on a
    refused connection or a 502/503/504, within the call's time budget (re-read on refresh).

    The budget is per process and per downstream (Finagle's ``RetryBudget``): over the last 10 s,
    retries may add at most ``budget_ratio`` of the calls plus ``min_per_s`` a second. Kept in
    memory, not Redis, so that a retry decision costs no round trip; a process can then add at most
    ``budget_ratio`` to the load on a failing downstream, so N replicas add at most that share too."""

    max_attempts: int = Field(
        3, ge=1, le=10, description="attempts per call, the first included; 1: no retries"
    )
    backoff_base_s: float = Field(
        0.02, ge=0, description="first backoff cap; doubles per attempt (full jitter)"
    )
    backoff_max_s: float = Field(0.2, ge=0, description="the largest backoff cap")
    budget_ratio: float = Field(0.2, ge=0, le=1, description="retries per call allowed over the last 10 s")
    min_per_s: float = Field(1.0, ge=0, description="retries a second always allowed (a quiet service)")


class DeadlineSettings(BaseModel):
    """Deadlines that travel (``chassis.deadline``), re-read on refresh."""

    edge_s: float | None = Field(
        None,
        gt=0,
        le=300,
        description="the deadline a request without ``X-Deadline-Ms`` gets here (the gateways: their "
        "BFF budget); None: none, unless the caller sent one",
    )
    max_s: float = Field(60.0, gt=0, description="a received deadline further out than this is cut to it")
    from_callers: bool = Field(
        True,
        description="take X-Deadline-Ms from callers; the gateways, which face the internet, do not (a "
        "client's short deadline would time their calls out and open the breakers everyone shares)",
    )


class ServerSettings(BaseModel):
    """Limits of the HTTP server itself, applied before a request reaches the app (``SERVER__...``).

    Read once when the server starts (``chassis.server``): a change needs a restart.
    """

    max_header_bytes: int = Field(
        32 * 1024, ge=1024, description="request line plus headers; a larger request head is answered 431"
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="a request head not complete this long after the connection opened (kept alive: "
        "after the request's first byte) is answered 408",
    )
    max_connections: int = Field(
        1000, ge=1, description="open connections per process; a request on one more is answered 503"
    )
    backlog: int = Field(2048, ge=1, description="connections the kernel queues before the server accepts")


class ShedSettings(BaseModel):
    """Load shedding (``chassis.shedding``): past its capacity a service answers 503 with
    ``Retry-After`` at once instead of queueing. Re-read on every request (a config commit changes
    it without a restart). The defaults never shed a service that keeps up with its load."""

    enabled: bool = Field(True, description="false: every request is let in, none counted")
    initial_limit: int = Field(
        100, ge=1, description="requests in flight let in at start; under it every timely answer adds 1"
    )
    min_limit: int = Field(50, ge=1, description="the limit never falls below this")
    max_limit: int = Field(
        500, ge=1, description="the limit never rises above this (keep under server.max_connections)"
    )
    latency_target_s: float | None = Field(
        None,
        gt=0,
        le=300,
        description="an answer later than this cuts the limit; None: a BFF's bff.budget_s (it answers "
        "within its budget unless it queues), else 1.0 (the callers' timeouts are 1.2-2 s)",
    )
    max_loop_lag_s: float = Field(
        0.25, gt=0, description="an event-loop lag over this (the loop is starved of CPU) cuts the limit"
    )
    backoff_ratio: float = Field(0.9, gt=0, lt=1, description="a cut multiplies the limit by this")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min_limit > self.max_limit:
            raise ValueError(f"shed.min_limit {self.min_limit} is over shed.max_limit {self.max_limit}")
        return self


class RouteChaos(BaseModel):
    """Fault injection for the routes under one path prefix; a value left out inherits the service's."""

    error_rate: float | None = Field(None, ge=0.0, le=1.0)
    latency_ms: int | None = Field(None, ge=0, le=60_000)


class ChaosSettings(BaseModel):
    """Fault injection read on every request from live config (``chaos.error_rate``, ``chaos.latency_ms``,
    ``chaos.routes./products.error_rate``), so a config commit breaks and heals a service without restart.
    Health and ops routes are never affected. ``store_error_rate`` fails writes to the service's own store."""

    error_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of requests answered with an error")
    latency_ms: int = Field(0, ge=0, le=60_000, description="delay added before the handler runs")
    error_status: int = Field(500, ge=500, le=599, description="status of an injected error")
    store_error_rate: float = Field(0.0, ge=0.0, le=1.0, description="share of store writes that fail")
    routes: dict[str, RouteChaos] = Field(default_factory=dict, description="path prefix -> its own values")

    @model_validator(mode="before")
    @classmethod
    def _normalise_routes(cls, data: Any) -> Any:
        # Remote keys arrive as ``chaos.routes./products.error_rate`` or, as Spring flattens map keys
        # with special characters, ``chaos.routes[/products].error_rate``: accept both forms.
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        routes = dict(data.get("routes") or {})
        for key in [k for k in data if isinstance(k, str) and k.startswith("routes[") and k.endswith("]")]:
            routes[key[len("routes[") : -1]] = data.pop(key)
        data["routes"] = {"/" + str(prefix).strip("[]").lstrip("/"): spec for prefix, spec in routes.items()}
        return data


class ServiceSettings(BaseSettings):
    """The wiring every service shares. Addresses come from the environment (compose), never
    from the config repository; behaviour (timeouts, thresholds, flags) may come from both."""

    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    service_name: str = "service"
    env: Environment = "development"
    version: str = "0.1.0"
    replica_id: str = Field("", description="tells replicas apart on the dashboard; hostname if empty")
    log_level: str = "INFO"
    host: str = "0.0.0.0"
    port: int = 8000
    advertise_url: str | None = Field(
        None, description="where others reach this service (the registry, chassis.registry); derived if unset"
    )
    # X-Forwarded-For/-Proto are believed only from these peers: anyone else could name any address
    # and so dodge (or aim) the per-address login limits. Read once, when the server starts.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="addresses or networks of the reverse proxies in front of this service "
        "(TRUSTED_PROXIES=10.0.0.5,10.1.0.0/16); none by default: forwarded headers are ignored",
    )

    redis_url: str = "redis://localhost:6379/0"
    zipkin_endpoint: str | None = "http://localhost:9411/api/v2/spans"
    tracing_sample_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="share of new traces recorded (a caller's sampling decision is followed); "
        "1.0: every request is in Zipkin, as the demo wants (read once, at start)",
    )
    logstash_host: str | None = None
    logstash_port: int = 5959
    auth_service_url: str = "http://localhost:8001"
    config_service_url: str | None = None

    log_queue_size: int = Field(10_000, ge=100, description="records buffered per log sink before dropping")
    http: HttpSettings = HttpSettings()
    breaker: BreakerSettings = BreakerSettings()
    bulkhead: BulkheadSettings = BulkheadSettings()
    retry: RetrySettings = RetrySettings()
    deadline: DeadlineSettings = DeadlineSettings()
    chaos: ChaosSettings = ChaosSettings()
    server: ServerSettings = ServerSettings()
    shed: ShedSettings = ShedSettings()

    # The chassis.config_client.ConfigClient that built these settings (load_settings), so
    # create_app can refresh them live; None when built any other way. Not a setting.
    _config_client: Any = PrivateAttr(default=None)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list | tuple):
            entries = [str(item).strip() for item in value if str(item).strip()]
            for entry in entries:
                # uvicorn would take a typo for a host name and silently trust nobody (or the wrong peer)
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"trusted_proxies: {entry!r} is no IP address or network") from None
            return entries
        return value

    @model_validator(mode="after")
    def _no_dev_defaults_in_production(self) -> Self:
        if self.env == "production":
            marked = [name for name, value in self._secret_values().items() if DEV_DEFAULT_MARK in value]
            if marked:
                raise ValueError(
                    f"ENV=production refuses the development defaults of {', '.join(sorted(marked))}: "
                    "set them in the environment"
                )
        return self

    def _secret_values(self) -> dict[str, str]:
        """Subclasses list their secret fields here so production refuses their dev defaults."""
        return {}

    @property
    def effective_replica_id(self) -> str:
        import socket

        return self.replica_id or socket.gethostname()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            RemoteSettingsSource(settings_cls),
            file_secret_settings,
        )

    @classmethod
    def load(cls, remote: Mapping[str, Any] | None = None, **overrides: Any) -> Self:
        """Build settings with ``remote`` (flat dotted keys from config-service) under the environment."""
        with _remote_values(remote or {}):
            return cls(**overrides)


# The extension point for remote configuration: the config client passes what it fetched.
_REMOTE: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "remote_settings", default=MappingProxyType({})
)


@contextmanager
def _remote_values(values: Mapping[str, Any]) -> Iterator[None]:
    token = _REMOTE.set(values)
    try:
        yield
    finally:
        _REMOTE.reset(token)


class RemoteSettingsSource(PydanticBaseSettingsSource):
    """Values from config-service, below the environment and above code defaults."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ does the work on the whole mapping

    def __call__(self) -> dict[str, Any]:
        nested = unflatten(_REMOTE.get())
        return {name: nested[name] for name in self.settings_cls.model_fields if name in nested}


S = TypeVar("S", bound=ServiceSettings)


class LiveSettings(Generic[S]):
    """The current settings snapshot of a running service, swapped whole on refresh.

    Readers take ``live.current`` once per operation; listeners hear ``(old, new)`` after a swap
    (breakers re-read thresholds, logging re-reads the level).
    """

    def __init__(self, settings: S) -> None:
        self._current = settings
        self._listeners: list[Callable[[S, S], None]] = []

    @property
    def current(self) -> S:
        return self._current

    def subscribe(self, listener: Callable[[S, S], None]) -> None:
        self._listeners.append(listener)

    def replace(self, new: S) -> None:
        old, self._current = self._current, new
        for listener in self._listeners:
            listener(old, new)
