"""Mobile product routes (public): a compact feed with cursor pagination, and a product screen.

A token is either checked fully (introspection: signature, expiry and revocation) or ignored.
These routes ignore it: they read no credentials, check none and relay none, so any token (valid,
revoked or forged) gets the anonymous answer and costs auth-service nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from chassis.bff import mark_degraded
from chassis.params import id_path
from gateway_mobile.dependencies import CatalogDep, InventoryDep, ReviewsDep, SettingsDep
from gateway_mobile.products import service
from gateway_mobile.products.schemas import ProductDetail, ProductFeed

__all__ = ["router"]

router = APIRouter(prefix="/m/products", tags=["products"])

ProductId = Annotated[str, id_path("product id (SKU)")]
DEGRADED = {"description": "`X-Degraded` names optional parts missing from the answer, e.g. `reviews`"}


@router.get(
    "",
    summary="Compact product feed: next page with `cursor` (the page size travels in it)",
    responses={
        200: DEGRADED,
        400: {"description": "bad cursor"},
        503: {"description": "catalog unavailable"},
    },
)
async def list_products(
    catalog: CatalogDep,
    inventory: InventoryDep,
    reviews: ReviewsDep,
    settings: SettingsDep,
    response: Response,
    cursor: Annotated[
        str | None, Query(max_length=64, description="`next_cursor` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT)] = 20,
) -> ProductFeed:
    feed = await service.list_products(
        catalog=catalog,
        inventory=inventory,
        reviews=reviews,
        budget_s=settings.bff.budget_s,
        cursor=cursor,
        limit=limit,
    )
    mark_degraded(response, feed.degraded)
    return feed


@router.get(
    "/{product_id}",
    summary="Product screen: product, stock, rating summary and one top review",
    responses={
        200: DEGRADED,
        404: {"description": "unknown product"},
        503: {"description": "catalog unavailable"},
    },
)
async def get_product(
    catalog: CatalogDep,
    inventory: InventoryDep,
    reviews: ReviewsDep,
    settings: SettingsDep,
    response: Response,
    product_id: ProductId,
) -> ProductDetail:
    detail = await service.get_product(
        catalog=catalog,
        inventory=inventory,
        reviews=reviews,
        budget_s=settings.bff.budget_s,
        product_id=product_id,
    )
    mark_degraded(response, detail.degraded)
    return detail
