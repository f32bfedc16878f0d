"""Settings loading: the seam where configuration from config-service joins the environment.

Precedence: environment > config-service > code defaults (see ``ServiceSettings.load``).

At start-up ``load_settings`` fetches ``/{service}/{profile}[/{label}]`` from config-service with
Spring's retry defaults (1 s, x1.1, at most 2 s, 6 attempts). When config-service cannot be reached
it falls back to the last-known-good copy cached on disk (warning), or to environment and defaults
when there is none, unless ``CONFIG_FAIL_FAST`` is set. Addresses never come from config-service:
wiring keys in the repository are ignored with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

import httpx
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chassis.keys import unflatten
from chassis.settings import DEV_DEFAULT_MARK, Environment, ServiceSettings

__all__ = [
    "ConfigClient",
    "ConfigClientSettings",
    "ConfigSnapshot",
    "ConfigUnavailable",
    "client_for",
    "load_settings",
    "merge_property_sources",
]

log = logging.getLogger(__name__)

S = TypeVar("S", bound=ServiceSettings)

# Wiring belongs to the environment (compose); a repository value for these is ignored.
WIRING_KEYS = frozenset(
    {
        "service_name",
        "env",
        "version",
        "replica_id",
        "host",
        "port",
        "redis_url",
        "zipkin_endpoint",
        "logstash_host",
        "logstash_port",
    }
)


class ConfigClientSettings(BaseSettings):
    """How to reach config-service (the bootstrap settings, from the environment only)."""

    model_config = SettingsConfigDict(extra="ignore")

    env: Environment = "development"
    config_service_url: str | None = None
    config_client_user: str = "config-client"
    config_client_password: str = f"{DEV_DEFAULT_MARK}-config-client-password"
    config_profile: str = Field("default", description="comma-separated Spring profiles; last wins")
    config_label: str | None = Field(None, description="branch, tag or commit; the server default if empty")
    config_fail_fast: bool = False
    config_cache_dir: Path = Field(default_factory=lambda: Path(tempfile.gettempdir()) / "msa-config-cache")
    config_timeout_s: float = Field(5.0, gt=0)
    config_retry_max_attempts: int = Field(6, ge=1)
    config_retry_initial_s: float = Field(1.0, ge=0)
    config_retry_multiplier: float = Field(1.1, ge=1.0)
    config_retry_max_s: float = Field(2.0, ge=0)
    config_refresh_retry_s: float = Field(
        2.0, gt=0, description="re-fetch interval while config-service is down"
    )

    @field_validator("config_service_url", "config_label", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _no_dev_password_in_production(self) -> Self:
        if (
            self.env == "production"
            and self.config_service_url
            and DEV_DEFAULT_MARK in self.config_client_password
        ):
            raise ValueError(
                "ENV=production refuses the development CONFIG_CLIENT_PASSWORD: set it in the environment"
            )
        return self

    def cache_file(self, service: str) -> Path:
        label = self.config_label or "default"
        name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{service}-{self.config_profile}-{label}")
        return self.config_cache_dir / f"{name}.json"


class ConfigUnavailable(Exception):
    """config-service could not answer (unreachable, error status, or an unusable answer)."""


@dataclass(frozen=True)
class ConfigSnapshot:
    """Where the current settings came from; /ops/config shows it."""

    source: str  # "config-service" | "cache" | "none"
    profile: str
    label: str | None = None
    version: str | None = None
    fetched_at: str | None = None
    property_sources: tuple[str, ...] = ()
    remote: Mapping[str, Any] = field(default_factory=dict)  # flat merged keys as served


def merge_property_sources(sources: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Spring's merge of property sources given highest precedence first.

    Overlay from the lowest up; a source that defines a list replaces the whole list below it.
    """
    merged: dict[str, Any] = {}
    for source in reversed(sources):
        roots = {key[: key.index("[")] for key in source if "[" in key}
        if roots:
            merged = {
                key: value for key, value in merged.items() if not any(key.startswith(f"{r}[") for r in roots)
            }
        merged.update(source)
    return merged


# -- talking to config-service -------------------------------------------------------------------


def fetch_environment(client: ConfigClientSettings, app: str) -> dict[str, Any]:
    """One GET of the Spring Environment; raises ``ConfigUnavailable``."""
    if not client.config_service_url:
        raise ConfigUnavailable("CONFIG_SERVICE_URL is not set")
    url = f"{client.config_service_url.rstrip('/')}/{app}/{client.config_profile}"
    if client.config_label:
        url += "/" + client.config_label.replace("/", "(_)")
    timeout = httpx.Timeout(client.config_timeout_s, connect=min(1.0, client.config_timeout_s))
    try:
        with httpx.Client(
            timeout=timeout, auth=(client.config_client_user, client.config_client_password)
        ) as http:
            response = http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ConfigUnavailable(f"{type(exc).__name__} calling {url}") from exc
    if response.status_code != 200:
        raise ConfigUnavailable(f"{response.status_code} from {url}")
    try:
        body = response.json()
        sources = body["propertySources"]
        if not isinstance(sources, list):
            raise TypeError("propertySources is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigUnavailable(f"unusable answer from {url}: {exc}") from exc
    return dict(body)


def _delays(client: ConfigClientSettings) -> list[float]:
    delays, delay = [], client.config_retry_initial_s
    for _ in range(client.config_retry_max_attempts - 1):
        delays.append(min(delay, client.config_retry_max_s))
        delay *= client.config_retry_multiplier
    return delays


def fetch_with_retry(
    client: ConfigClientSettings, app: str, *, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """Spring's retry: the same GET up to ``config_retry_max_attempts`` times with growing pauses."""
    last: ConfigUnavailable | None = None
    for attempt, pause in enumerate([*_delays(client), None], start=1):
        try:
            return fetch_environment(client, app)
        except ConfigUnavailable as exc:
            last = exc
            log.info("config-service attempt %d failed: %s", attempt, exc)
            if pause is not None:
                sleep(pause)
    assert last is not None
    raise last


class ConfigClient(Generic[S]):
    """Fetches a service's configuration and turns it into settings snapshots."""

    def __init__(self, settings_cls: type[S], client: ConfigClientSettings, service: str) -> None:
        self.settings_cls = settings_cls
        self.client = client
        self.service = service
        self.snapshot = ConfigSnapshot(
            source="none", profile=client.config_profile, label=client.config_label
        )

    def fetch(self, *, retry: bool) -> dict[str, Any]:
        if retry:
            return fetch_with_retry(self.client, self.service)
        return fetch_environment(self.client, self.service)

    def build(self, environment: Mapping[str, Any], *, source: str) -> tuple[S, ConfigSnapshot]:
        """Settings from an Environment answer (raises ``ValidationError`` on bad values)."""
        sources = [dict(ps.get("source") or {}) for ps in environment.get("propertySources", [])]
        merged = merge_property_sources(sources)
        nested = unflatten(merged)
        ignored = sorted(
            key for key in nested if key in WIRING_KEYS or "_url" in key or key.startswith("config_")
        )
        if ignored:
            log.warning(
                "config-service keys ignored (addresses come from the environment): %s", ", ".join(ignored)
            )
        remote = {key: value for key, value in nested.items() if key not in ignored}
        settings = self.settings_cls.load(remote=remote)
        snapshot = ConfigSnapshot(
            source=source,
            profile=self.client.config_profile,
            label=environment.get("label") or self.client.config_label,
            version=environment.get("version"),
            fetched_at=environment.get("x-fetched-at") or _now(),
            property_sources=tuple(str(ps.get("name", "")) for ps in environment.get("propertySources", [])),
            remote=merged,
        )
        return settings, snapshot

    def save_cache(self, environment: Mapping[str, Any]) -> None:
        """Atomically write the last good answer; mode 0600, since it may hold decrypted secrets."""
        path = self.client.cache_file(self.service)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({**environment, "x-fetched-at": _now()}, fh)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("config cache not written to %s: %s", path, type(exc).__name__)

    def load_cache(self) -> dict[str, Any] | None:
        path = self.client.cache_file(self.service)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("config cache %s unreadable: %s", path, type(exc).__name__)
            return None
        return dict(data) if isinstance(data, dict) else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def client_for(settings: ServiceSettings) -> ConfigClient[Any] | None:
    """The config client that built ``settings`` (``load_settings``), for create_app's live
    refresh; None for settings built any other way (tests, config-service itself)."""
    client = settings._config_client
    return client if isinstance(client, ConfigClient) else None


def _register(settings: S, config: ConfigClient[S]) -> S:
    settings._config_client = config
    return settings


def load_settings(cls: type[S], *, client: ConfigClientSettings | None = None) -> S:
    """Build a service's settings at start-up: environment > config-service > code defaults."""
    base = cls.load(remote={})
    client = client or ConfigClientSettings()
    if not client.config_service_url:
        return base
    from chassis.logging import configure_logging  # start-up messages in the service's log shape

    configure_logging(base)
    config = ConfigClient(cls, client, base.service_name)
    try:
        environment = config.fetch(retry=True)
        settings, config.snapshot = config.build(environment, source="config-service")
    except (ConfigUnavailable, ValidationError) as exc:
        if client.config_fail_fast:
            raise RuntimeError(
                f"config-service unusable and CONFIG_FAIL_FAST is set: {_reason(exc)}"
            ) from exc
        return _register(_fallback(config, base, exc), config)
    config.save_cache(environment)
    log.info(
        "configuration %s of %s/%s loaded from config-service",
        config.snapshot.version,
        base.service_name,
        client.config_profile,
    )
    return _register(settings, config)


def _fallback(config: ConfigClient[S], base: S, exc: Exception) -> S:
    cached = config.load_cache()
    if cached is not None:
        try:
            settings, config.snapshot = config.build(cached, source="cache")
        except ValidationError as bad:
            log.warning("cached configuration unusable (%s)", _reason(bad))
        else:
            log.warning(
                "config-service unusable (%s): using the cached configuration %s from %s",
                _reason(exc),
                config.snapshot.version,
                config.snapshot.fetched_at,
            )
            return settings
    log.warning(
        "config-service unusable (%s) and no cached configuration: environment and defaults only",
        _reason(exc),
    )
    return base


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        # Field locations only: a rejected value may be a secret.
        return "invalid values for " + ", ".join(".".join(map(str, err["loc"])) for err in exc.errors())
    return str(exc)
