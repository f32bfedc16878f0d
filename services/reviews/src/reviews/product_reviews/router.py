"""HTTP routes of reviews: thin, the service module holds the logic."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status

from chassis.chaos import inject_faults
from chassis.params import id_list, id_path
from reviews.dependencies import DatabaseDep, Reviewer
from reviews.product_reviews import service
from reviews.product_reviews.schemas import ReviewCreate, ReviewPage, ReviewPublic, SummaryBatch

__all__ = ["router"]

router = APIRouter(tags=["reviews"], dependencies=[Depends(inject_faults)])

ProductId = Annotated[str, id_path("product id")]
MAX_BATCH = 100


@router.get(
    "/products/{product_id}/reviews",
    summary="Reviews of a product, paged (newest first, or top rated with sort=top)",
    description="reviews does not own the catalog: an unknown product simply has no reviews.",
)
async def list_reviews(
    db: DatabaseDep,
    product_id: ProductId,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=50)] = 10,
    sort: Annotated[
        Literal["newest", "top"], Query(description="newest first, or top: highest rating first, then newest")
    ] = "newest",
) -> ReviewPage:
    return await service.list_reviews(db=db, product_id=product_id, page=page, size=size, sort=sort)


@router.get("/summaries", summary="Average rating and count for several products")
async def summaries(
    db: DatabaseDep,
    product_ids: Annotated[
        list[str], Query(min_length=1, description="repeat `product_ids=` or give one comma-separated")
    ],
) -> SummaryBatch:
    return await service.summarise(
        db=db, product_ids=id_list(product_ids, at_most=MAX_BATCH, what="product ids")
    )


@router.post(
    "/products/{product_id}/reviews",
    status_code=status.HTTP_201_CREATED,
    summary="Review a product as the signed-in user (one review per user and product)",
    responses={409: {"description": "this user has reviewed this product already"}},
)
async def create_review(
    db: DatabaseDep, author: Reviewer, product_id: ProductId, review: ReviewCreate
) -> ReviewPublic:
    return await service.create_review(db=db, product_id=product_id, author=author.sub, review=review)
