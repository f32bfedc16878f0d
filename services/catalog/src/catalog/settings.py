"""Settings of catalog: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from pathlib import Path

from chassis.auth import AuthSettings
from chassis.store import StoreSettings

__all__ = ["Settings"]


class Settings(StoreSettings):
    service_name: str = "catalog"
    data_dir: Path = Path("./var/catalog")  # env DATA_DIR; holds catalog.sqlite3 unless DATABASE_URL is set
    auth: AuthSettings = AuthSettings()  # who issues the tokens gateways relay (AUTH__ISSUER, ...)
