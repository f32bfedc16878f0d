"""Settings of inventory: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from pathlib import Path

from chassis import ServiceSettings
from chassis.auth import AuthSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: str = "inventory"
    data_dir: Path = Path("./var/inventory")  # env DATA_DIR; holds inventory.sqlite3
    auth: AuthSettings = AuthSettings()  # who issues the tokens gateways relay (AUTH__ISSUER, ...)
