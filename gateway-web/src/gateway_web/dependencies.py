"""Annotated dependency aliases of gateway-web."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from chassis import Downstream, downstream
from chassis.auth import Principal
from gateway_web.auth.service import session_user

__all__ = ["CatalogDep", "SessionUser"]

CatalogDep = Annotated[Downstream, Depends(downstream("catalog"))]
# The logged-in browser user (cookie -> Redis session -> refresh -> introspection); unsafe methods
# also need X-CSRF-Token. Relay ``user.access_token`` downstream: ``headers=user.auth_header()``.
SessionUser = Annotated[Principal, Depends(session_user)]
