from __future__ import annotations

from pydantic import BaseModel

__all__ = ["ProductPage", "ProductPublic"]


class ProductPublic(BaseModel):
    id: str
    name: str
    category: str
    price_cents: int
    currency: str = "EUR"
    description: str = ""
    image_url: str = ""


class ProductPage(BaseModel):
    items: list[ProductPublic]
    page: int
    size: int
    total: int
