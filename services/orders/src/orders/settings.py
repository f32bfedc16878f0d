"""Settings of orders: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from chassis import ServiceSettings
from chassis.auth import AuthSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: str = "orders"
    catalog_url: str = "http://localhost:8011"
    inventory_url: str = "http://localhost:8012"
    data_dir: Path = Path("./var/orders")  # env DATA_DIR; holds orders.sqlite3
    auth: AuthSettings = AuthSettings()  # who issues the tokens gateways relay (AUTH__ISSUER, ...)

    abandoned_after_s: float = Field(
        30.0,
        gt=0,
        description="an order attempt unfinished this long is abandoned: its reservation is released",
    )
    recovery_interval_s: float = Field(5.0, gt=0, description="how often abandoned attempts are looked for")
