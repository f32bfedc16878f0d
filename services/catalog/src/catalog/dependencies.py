"""Annotated dependency aliases of catalog."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from catalog.settings import Settings
from chassis.auth import Principal, require_scope
from chassis.dependencies import settings_of
from chassis.store import DatabaseDep

__all__ = ["CatalogWriter", "DatabaseDep", "SettingsDep"]


SettingsDep = Annotated[Settings, Depends(settings_of(Settings))]
# Admin-only writes: a verified JWT (relayed by a gateway) holding the catalog:write scope.
CatalogWriter = Annotated[Principal, Depends(require_scope("catalog:write"))]
