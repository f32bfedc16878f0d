from __future__ import annotations

from pydantic import BaseModel

__all__ = ["ProductCard", "ProductListing"]


class ProductCard(BaseModel):
    """A product as the web shop shows it in a listing."""

    id: str
    name: str
    category: str
    description: str
    price: str
    price_cents: int
    currency: str
    image_url: str


class ProductListing(BaseModel):
    items: list[ProductCard]
    page: int
    size: int
    total: int
    degraded: list[str] = []
