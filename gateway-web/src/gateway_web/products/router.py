"""Web product routes: public views (no session needed), and posting a review (session + CSRF).

Credentials are either checked fully (session, then introspection: signature, expiry and
revocation) or ignored. The public views ignore them: no cookie or token is read, checked or
relayed, so any credentials (live, ended or forged) get the anonymous answer and cost
auth-service nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from chassis.bff import mark_degraded
from chassis.params import id_path
from gateway_web.dependencies import CatalogDep, InventoryDep, ReviewsDep, SessionWriter, SettingsDep
from gateway_web.products import service
from gateway_web.products.schemas import ProductListing, ProductPage, ReviewCreate, ReviewPublic

__all__ = ["router"]

router = APIRouter(prefix="/api/products", tags=["products"])

ProductId = Annotated[str, id_path("product id (SKU)")]
DEGRADED = {"description": "`X-Degraded` names optional parts missing from the answer, e.g. `reviews`"}


@router.get(
    "",
    summary="Product listing with price, stock and rating",
    responses={200: DEGRADED, 503: {"description": "catalog unavailable (Retry-After)"}},
)
async def list_products(
    catalog: CatalogDep,
    inventory: InventoryDep,
    reviews: ReviewsDep,
    settings: SettingsDep,
    response: Response,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
    q: Annotated[str | None, Query(max_length=100, description="text in name, brand or description")] = None,
    category: Annotated[str | None, Query(max_length=50)] = None,
) -> ProductListing:
    listing = await service.list_products(
        catalog=catalog,
        inventory=inventory,
        reviews=reviews,
        budget_s=settings.bff.budget_s,
        page=page,
        size=size,
        q=q,
        category=category,
    )
    mark_degraded(response, listing.degraded)
    return listing


@router.get(
    "/{product_id}",
    summary="Product page: product, stock, rating summary and latest reviews, fetched concurrently",
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
) -> ProductPage:
    page = await service.get_product(
        catalog=catalog,
        inventory=inventory,
        reviews=reviews,
        budget_s=settings.bff.budget_s,
        product_id=product_id,
    )
    mark_degraded(response, page.degraded)
    return page


@router.post(
    "/{product_id}/reviews",
    status_code=status.HTTP_201_CREATED,
    summary="Review a product as the logged-in user (session cookie + X-CSRF-Token)",
    responses={404: {"description": "unknown product"}, 409: {"description": "already reviewed"}},
)
async def create_review(
    catalog: CatalogDep, reviews: ReviewsDep, user: SessionWriter, product_id: ProductId, review: ReviewCreate
) -> ReviewPublic:
    return await service.create_review(
        catalog=catalog, reviews=reviews, user=user, product_id=product_id, review=review
    )
