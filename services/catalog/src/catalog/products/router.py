from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from catalog.products import service
from catalog.products.schemas import ProductPage

__all__ = ["router"]

router = APIRouter(prefix="/products", tags=["products"])


@router.get("", summary="List products, paged")
async def list_products(
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ProductPage:
    return service.list_products(page=page, size=size)
