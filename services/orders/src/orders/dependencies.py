"""Annotated dependency aliases of orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from chassis import Downstream, downstream
from chassis.auth import Principal, as_service, require_scope
from chassis.dependencies import settings_of
from chassis.store import DatabaseDep
from orders.settings import Settings

__all__ = ["CatalogDep", "DatabaseDep", "InventoryDep", "OrderReader", "OrderWriter", "SettingsDep"]


SettingsDep = Annotated[Settings, Depends(settings_of(Settings))]
CatalogDep = Annotated[Downstream, Depends(downstream("catalog"))]
InventoryDep = Annotated[Downstream, Depends(as_service("inventory"))]  # with orders' own token
# Who may order and see orders: a verified JWT relayed by a gateway; its ``sub`` owns the orders.
OrderWriter = Annotated[Principal, Depends(require_scope("orders:write"))]
OrderReader = Annotated[Principal, Depends(require_scope("orders:read"))]
