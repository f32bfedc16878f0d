"""orders' JSON shapes (what OpenAPI at /docs shows)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chassis.params import ID_PATTERN

__all__ = ["OrderCreate", "OrderLine", "OrderLineCreate", "OrderPage", "OrderPublic"]


class OrderLineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(pattern=ID_PATTERN)
    # strict: JSON true or "1" is no quantity (lax mode would read both as 1)
    quantity: int = Field(ge=1, le=100, strict=True)


class OrderCreate(BaseModel):
    """The body of ``POST /orders``; prices are taken from the catalog, never from the client."""

    model_config = ConfigDict(extra="forbid")

    lines: list[OrderLineCreate] = Field(min_length=1, max_length=20)

    @field_validator("lines")
    @classmethod
    def _one_line_per_product(cls, lines: list[OrderLineCreate]) -> list[OrderLineCreate]:
        if len({line.product_id for line in lines}) != len(lines):
            raise ValueError("each product may appear once")
        return lines


class OrderLine(BaseModel):
    product_id: str
    name: str = Field(description="the product's name when ordered")
    unit_price_cents: int
    quantity: int
    line_total_cents: int


class OrderPublic(BaseModel):
    id: str
    user: str
    status: Literal["confirmed", "delivered"] = Field(
        description="confirmed: stock reserved in inventory; delivered: demo history"
    )
    lines: list[OrderLine]
    total_cents: int
    currency: str
    created_at: datetime


class OrderPage(BaseModel):
    items: list[OrderPublic] = Field(description="newest first")
    page: int
    size: int
    total: int
