"""Annotated dependency aliases of inventory."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from chassis.auth import Principal, require_scope
from chassis.dependencies import settings_of
from chassis.store import DatabaseDep
from inventory.settings import Settings

__all__ = ["DatabaseDep", "Reserver", "SettingsDep", "StockAdmin"]


SettingsDep = Annotated[Settings, Depends(settings_of(Settings))]
# Setting stock levels is for admins: a verified JWT with inventory:write.
StockAdmin = Annotated[Principal, Depends(require_scope("inventory:write"))]
# Reserving and releasing stock is for orders: its client_credentials token carries inventory:reserve.
Reserver = Annotated[Principal, Depends(require_scope("inventory:reserve"))]
