from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway_mobile.dependencies import CatalogDep
from gateway_mobile.products import service
from gateway_mobile.products.schemas import ProductFeed

__all__ = ["router"]

router = APIRouter(prefix="/m/products", tags=["products"])


@router.get("", summary="Compact product feed with cursor pagination")
async def list_products(
    catalog: CatalogDep,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> ProductFeed:
    return await service.list_products(catalog=catalog, cursor=cursor, limit=limit)
