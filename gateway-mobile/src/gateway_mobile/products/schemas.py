"""What the app shows: one row per product in lists, and a compact product screen."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["ProductCompact", "ProductDetail", "ProductFeed", "RatingSummary", "TopReview"]


class ProductCompact(BaseModel):
    """A list row. ``in_stock`` and ``rating`` are null when inventory or reviews could not say."""

    id: str
    name: str
    price: int = Field(description="minor units of the shop currency (EUR): 12900 = 129.00")
    thumb_url: str
    in_stock: bool | None
    rating: float | None = Field(description="average stars, null without reviews or when unknown")


class ProductFeed(BaseModel):
    items: list[ProductCompact]
    next_cursor: str | None
    degraded: list[str] = Field(description="optional parts missing from this answer, e.g. ['reviews']")


class RatingSummary(BaseModel):
    average: float | None
    count: int


class TopReview(BaseModel):
    author: str
    rating: int
    title: str
    body: str


class ProductDetail(BaseModel):
    """The product screen: the product, stock, rating summary and its best recent review."""

    id: str
    name: str
    brand: str
    description: str
    price: int
    currency: str
    image_url: str
    in_stock: bool | None
    available: int | None
    rating: RatingSummary | None
    top_review: TopReview | None
    degraded: list[str]
