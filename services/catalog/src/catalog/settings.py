"""Settings of catalog: the chassis wiring plus what this service alone needs."""

from __future__ import annotations

from pathlib import Path

from chassis import ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: str = "catalog"
    data_dir: Path = Path("./var/catalog")  # env DATA_DIR; holds catalog.sqlite3
