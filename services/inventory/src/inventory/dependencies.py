"""Annotated dependency aliases of inventory."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chassis.auth import Principal, require_scope
from chassis.sqlite import DatabaseDep
from inventory.settings import Settings

__all__ = ["DatabaseDep", "Reserver", "SettingsDep", "StockAdmin"]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.live.current
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]
# Setting stock levels is for admins: a verified JWT with inventory:write.
StockAdmin = Annotated[Principal, Depends(require_scope("inventory:write"))]
# Reserving and releasing stock is for orders: its client_credentials token carries inventory:reserve.
Reserver = Annotated[Principal, Depends(require_scope("inventory:reserve"))]
