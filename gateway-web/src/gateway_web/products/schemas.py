"""What the web shop shows: rich product cards and a full product page (aggregated views)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ProductCard",
    "ProductListing",
    "ProductPage",
    "Rating",
    "ReviewCreate",
    "ReviewPublic",
    "Stock",
]


class Stock(BaseModel):
    """From inventory; a view shows ``stock: null`` when inventory could not say."""

    available: int
    in_stock: bool


class Rating(BaseModel):
    """From reviews; ``average`` is null for a product nobody reviewed yet."""

    average: float | None
    count: int


class ProductCard(BaseModel):
    """A product in the web listing: catalog data, plus stock and rating (``null`` = unknown now)."""

    id: str
    name: str
    brand: str
    category: str
    description: str
    price: str = Field(description="formatted for display, e.g. '129.00 EUR'")
    price_cents: int
    currency: str
    image_url: str
    thumb_url: str
    stock: Stock | None
    rating: Rating | None


class ProductListing(BaseModel):
    items: list[ProductCard]
    page: int
    size: int
    total: int
    degraded: list[str] = Field(description="optional parts missing from this answer, e.g. ['reviews']")


class ReviewPublic(BaseModel):
    id: int
    author: str
    rating: int
    title: str
    body: str
    created_at: datetime


class ProductPage(ProductCard):
    """The product page: the card plus the latest reviews (``null`` when reviews are unavailable)."""

    latest_reviews: list[ReviewPublic] | None
    degraded: list[str] = Field(description="optional parts missing from this answer, e.g. ['reviews']")


class ReviewCreate(BaseModel):
    """Checked here as reviews checks it, so a bad body costs no downstream call."""

    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5)
    title: str = Field(min_length=1, max_length=120)
    body: str = Field("", max_length=4000)
