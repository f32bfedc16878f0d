"""Annotated dependency aliases of gateway-mobile."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from chassis import Downstream, downstream
from chassis.auth import Principal
from chassis.dependencies import settings_of
from gateway_mobile.auth.service import bearer_user
from gateway_mobile.settings import Settings

__all__ = ["BearerUser", "CatalogDep", "InventoryDep", "OrdersDep", "ReviewsDep", "SettingsDep"]

CatalogDep = Annotated[Downstream, Depends(downstream("catalog"))]
InventoryDep = Annotated[Downstream, Depends(downstream("inventory"))]
ReviewsDep = Annotated[Downstream, Depends(downstream("reviews"))]
OrdersDep = Annotated[Downstream, Depends(downstream("orders"))]
# The app's user from `Authorization: Bearer` (checked by auth-service introspection).
# Relay ``user.access_token`` downstream: ``headers=user.auth_header()``.
BearerUser = Annotated[Principal, Depends(bearer_user)]


SettingsDep = Annotated[Settings, Depends(settings_of(Settings))]
