"""The catalog's JSON shapes (what OpenAPI at /docs shows)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from chassis.params import ID_PATTERN

__all__ = ["ProductBatch", "ProductCreate", "ProductPage", "ProductPublic", "ProductUpdate"]


class ProductPublic(BaseModel):
    """A product. Its ``id`` is also its SKU in inventory."""

    id: str
    name: str
    category: str
    brand: str
    price_cents: int = Field(description="unit price in minor units of ``currency``")
    currency: str
    description: str
    image_url: str
    thumb_url: str
    created_at: datetime
    updated_at: datetime


class ProductPage(BaseModel):
    items: list[ProductPublic]
    page: int
    size: int
    total: int = Field(description="matching products over all pages")
    next_after: str | None = Field(
        description="pass as `after` for the next page (keyset paging, e.g. a mobile cursor); null on the last"
    )


class ProductBatch(BaseModel):
    items: list[ProductPublic] = Field(description="found products, in the order asked")
    missing: list[str] = Field(description="asked ids that do not exist")


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, pattern=ID_PATTERN, description="generated when left out")
    name: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=50, pattern=r"^[a-z0-9-]+$")
    brand: str = Field("", max_length=100)
    # strict: money is a JSON integer; lax mode would take "12" or true
    price_cents: int = Field(ge=0, le=10_000_000, strict=True)
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    description: str = Field("", max_length=4000)
    image_url: str = Field("", max_length=500)
    thumb_url: str = Field("", max_length=500)


class ProductUpdate(BaseModel):
    """Partial update: only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    category: str | None = Field(None, min_length=1, max_length=50, pattern=r"^[a-z0-9-]+$")
    brand: str | None = Field(None, max_length=100)
    price_cents: int | None = Field(None, ge=0, le=10_000_000, strict=True)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    description: str | None = Field(None, max_length=4000)
    image_url: str | None = Field(None, max_length=500)
    thumb_url: str | None = Field(None, max_length=500)
