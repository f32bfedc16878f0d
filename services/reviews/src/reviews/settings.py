"""Settings of reviews: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from chassis import ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: str = "reviews"
