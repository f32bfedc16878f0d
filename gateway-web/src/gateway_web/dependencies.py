"""Annotated dependency aliases of gateway-web."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from chassis import Downstream, downstream
from chassis.auth import Principal
from chassis.dependencies import settings_of
from gateway_web.auth.service import session_user, session_writer
from gateway_web.settings import Settings

__all__ = [
    "CatalogDep",
    "InventoryDep",
    "OrdersDep",
    "ReviewsDep",
    "SessionUser",
    "SessionWriter",
    "SettingsDep",
]

CatalogDep = Annotated[Downstream, Depends(downstream("catalog"))]
InventoryDep = Annotated[Downstream, Depends(downstream("inventory"))]
ReviewsDep = Annotated[Downstream, Depends(downstream("reviews"))]
OrdersDep = Annotated[Downstream, Depends(downstream("orders"))]
# The logged-in browser user (cookie -> Redis session -> refresh -> introspection); unsafe methods
# also need X-CSRF-Token. Relay ``user.access_token`` downstream: ``headers=user.auth_header()``.
SessionUser = Annotated[Principal, Depends(session_user)]
SessionWriter = Annotated[Principal, Depends(session_writer)]  # the same, documented with the CSRF header


SettingsDep = Annotated[Settings, Depends(settings_of(Settings))]
