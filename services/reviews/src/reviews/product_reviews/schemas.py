"""reviews' JSON shapes (what OpenAPI at /docs shows)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RatingSummary", "ReviewCreate", "ReviewPage", "ReviewPublic", "SummaryBatch"]


class ReviewPublic(BaseModel):
    id: int
    product_id: str
    author: str = Field(description="the reviewer's user name")
    rating: int = Field(ge=1, le=5)
    title: str
    body: str
    created_at: datetime


class ReviewPage(BaseModel):
    """With the product's rating summary (``total``, ``average``): a product page makes one call."""

    items: list[ReviewPublic] = Field(description="in the order asked (`sort`)")
    page: int
    size: int
    total: int = Field(description="the product's reviews in all")
    average: float | None = Field(
        description="mean rating of all the product's reviews, rounded to 2 places; null without reviews"
    )


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5)
    title: str = Field(min_length=1, max_length=120)
    body: str = Field("", max_length=4000)


class RatingSummary(BaseModel):
    product_id: str
    average: float | None = Field(description="mean rating rounded to 2 places; null without reviews")
    count: int


class SummaryBatch(BaseModel):
    items: list[RatingSummary] = Field(description="one per asked product, in the order asked")
