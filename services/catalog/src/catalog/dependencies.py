"""Annotated dependency aliases of catalog."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from catalog.settings import Settings
from chassis.auth import Principal, require_scope
from chassis.sqlite import DatabaseDep

__all__ = ["CatalogWriter", "DatabaseDep", "SettingsDep"]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.live.current
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
# Admin-only writes: a verified JWT (relayed by a gateway) holding the catalog:write scope.
CatalogWriter = Annotated[Principal, Depends(require_scope("catalog:write"))]
