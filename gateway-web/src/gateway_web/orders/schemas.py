"""Orders as the web shop shows them: lines with names (and pictures from catalog), totals formatted."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chassis.params import ID_PATTERN

__all__ = ["OrderCreate", "OrderLineCreate", "OrderLineView", "OrderList", "OrderView"]


class OrderLineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(pattern=ID_PATTERN)
    # strict: JSON true or "1" is no quantity (lax mode would read both as 1)
    quantity: int = Field(ge=1, le=100, strict=True)


class OrderCreate(BaseModel):
    """Checked here as orders checks it, so a bad body costs no downstream call."""

    model_config = ConfigDict(extra="forbid")

    lines: list[OrderLineCreate] = Field(min_length=1, max_length=20)

    @field_validator("lines")
    @classmethod
    def _one_line_per_product(cls, lines: list[OrderLineCreate]) -> list[OrderLineCreate]:
        if len({line.product_id for line in lines}) != len(lines):
            raise ValueError("each product may appear once")
        return lines


class OrderLineView(BaseModel):
    product_id: str
    name: str = Field(description="the product's name when ordered")
    quantity: int
    unit_price: str
    unit_price_cents: int
    line_total_cents: int
    thumb_url: str | None = Field(description="from catalog; null when catalog is unavailable or dropped it")


class OrderView(BaseModel):
    id: str
    status: str
    lines: list[OrderLineView]
    total: str = Field(description="formatted for display, e.g. '258.00 EUR'")
    total_cents: int
    currency: str
    created_at: datetime
    degraded: list[str] = Field(default_factory=list, description="e.g. ['catalog']: pictures missing")


class OrderList(BaseModel):
    items: list[OrderView]
    page: int
    size: int
    total: int
    degraded: list[str] = Field(description="e.g. ['catalog']: pictures missing")
