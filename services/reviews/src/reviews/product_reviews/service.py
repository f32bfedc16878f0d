"""reviews use cases."""

from __future__ import annotations

from chassis.store import Database
from reviews.product_reviews import repository
from reviews.product_reviews.errors import AlreadyReviewed
from reviews.product_reviews.schemas import (
    RatingSummary,
    ReviewCreate,
    ReviewPage,
    ReviewPublic,
    SummaryBatch,
)

__all__ = ["create_review", "list_reviews", "summarise"]


async def list_reviews(
    *, db: Database, product_id: str, page: int, size: int, sort: str = "newest"
) -> ReviewPage:
    rows, total, average = await db.read(
        lambda conn: repository.page_for_product(
            conn, product_id, offset=(page - 1) * size, limit=size, sort=sort
        )
    )
    return ReviewPage(
        items=[ReviewPublic(**row) for row in rows],
        page=page,
        size=size,
        total=total,
        average=_rounded(average),
    )


async def summarise(*, db: Database, product_ids: list[str]) -> SummaryBatch:
    unique = list(dict.fromkeys(product_ids))
    found = await db.read(lambda conn: repository.summaries(conn, unique))
    items = []
    for product_id in unique:
        average, count = found.get(product_id, (None, 0))
        items.append(RatingSummary(product_id=product_id, average=_rounded(average), count=count))
    return SummaryBatch(items=items)


async def create_review(*, db: Database, product_id: str, author: str, review: ReviewCreate) -> ReviewPublic:
    values = {"product_id": product_id, "author": author, **review.model_dump()}
    row = await db.write(lambda conn: repository.insert(conn, values))
    if row is None:
        raise AlreadyReviewed("You have already reviewed this product.")
    return ReviewPublic(**row)


def _rounded(average: float | None) -> float | None:
    return None if average is None else round(average, 2)
