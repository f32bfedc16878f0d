"""Settings of reviews: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from pathlib import Path

from chassis.auth import AuthSettings
from chassis.store import StoreSettings

__all__ = ["Settings"]


class Settings(StoreSettings):
    service_name: str = "reviews"
    data_dir: Path = Path("./var/reviews")  # env DATA_DIR; holds reviews.sqlite3 unless DATABASE_URL is set
    auth: AuthSettings = AuthSettings()  # who issues the tokens gateways relay (AUTH__ISSUER, ...)
