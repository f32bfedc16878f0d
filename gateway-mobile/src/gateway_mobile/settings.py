"""Settings of gateway-mobile: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from chassis import ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: str = "gateway-mobile"
    catalog_url: str = "http://localhost:8011"
