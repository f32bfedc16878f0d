from __future__ import annotations

from pydantic import BaseModel

__all__ = ["ProductCompact", "ProductFeed"]


class ProductCompact(BaseModel):
    """A product as the app shows it in a list: only what fits a row."""

    id: str
    name: str
    price: int
    thumb_url: str


class ProductFeed(BaseModel):
    items: list[ProductCompact]
    next_cursor: str | None
