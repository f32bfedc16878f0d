"""Annotated dependency aliases of gateway-mobile."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from chassis import Downstream, downstream

__all__ = ["CatalogDep"]

CatalogDep = Annotated[Downstream, Depends(downstream("catalog"))]
