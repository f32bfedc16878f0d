"""Settings of ops-dashboard: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from pydantic import Field, field_validator

from chassis import ServiceSettings

__all__ = ["Settings", "parse_service_urls"]


def parse_service_urls(value: str) -> dict[str, str]:
    """``"catalog=http://catalog:8000,orders=http://orders:8000"`` -> ``{name: url}``.

    An entry whose URL is empty is skipped: the local runner blanks addresses of services it
    does not run, and the panel should not show those as down.
    """
    targets: dict[str, str] = {}
    for entry in value.split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, url = entry.partition("=")
        name, url = name.strip(), url.strip()
        if not sep or not name:
            raise ValueError(f"SERVICE_URLS entry {entry!r} is not name=url")
        if url and not url.startswith(("http://", "https://")):
            raise ValueError(f"SERVICE_URLS entry {entry!r}: the URL must start with http:// or https://")
        if url:
            targets[name] = url.rstrip("/")
    return targets


class Settings(ServiceSettings):
    service_name: str = "ops-dashboard"
    service_urls: str = Field(
        "",
        description="name=url,... of the services whose /health/ready is polled; empty: every service "
        "in the registry (chassis.registry), so a new service shows up with no edit here",
    )
    registry_max_age_s: float = Field(
        600.0, gt=0, description="a registered service not heard of this long leaves the panel"
    )
    zipkin_ui_url: str = Field(
        "http://localhost:9411", description="Zipkin as the operator's browser reaches it"
    )
    stale_after_s: float = Field(3.0, gt=0, description="a replica silent this long fades out")
    expire_after_s: float = Field(10.0, gt=0, description="a replica silent this long is dropped")
    tick_s: float = Field(1.0, gt=0, description="one aggregated state event per tick")
    history_s: float = Field(120.0, gt=0, description="length of the rate sparkline")
    alerts_keep: int = Field(100, ge=1, description="alerts kept in memory for new viewers")
    health_poll_s: float = Field(2.0, gt=0)
    health_timeout_s: float = Field(1.5, gt=0)
    heartbeat_s: float = Field(
        5.0, gt=0, description="SSE comment interval, keeps proxies from closing the stream"
    )

    @field_validator("service_urls")
    @classmethod
    def _valid_service_urls(cls, value: str) -> str:
        parse_service_urls(value)
        return value

    @field_validator("zipkin_ui_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def service_targets(self) -> dict[str, str]:
        return parse_service_urls(self.service_urls)
