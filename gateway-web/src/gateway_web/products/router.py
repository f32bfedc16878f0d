from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway_web.dependencies import CatalogDep
from gateway_web.products import service
from gateway_web.products.schemas import ProductListing

__all__ = ["router"]

router = APIRouter(prefix="/api/products", tags=["products"])


@router.get("", summary="Product listing for the web shop")
async def list_products(
    catalog: CatalogDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ProductListing:
    return await service.list_products(catalog=catalog, page=page, size=size)
