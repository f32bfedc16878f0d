"""Annotated dependency aliases of gateway-mobile."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from chassis import Downstream, downstream
from chassis.auth import Principal
from gateway_mobile.auth.service import bearer_user

__all__ = ["BearerUser", "CatalogDep"]

CatalogDep = Annotated[Downstream, Depends(downstream("catalog"))]
# The app's user from `Authorization: Bearer` (checked by auth-service introspection).
# Relay ``user.access_token`` downstream: ``headers=user.auth_header()``.
BearerUser = Annotated[Principal, Depends(bearer_user)]
