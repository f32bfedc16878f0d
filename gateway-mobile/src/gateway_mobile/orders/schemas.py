"""Orders as the app shows them: totals in minor units, lines with names as ordered."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chassis.params import ID_PATTERN

__all__ = ["OrderCompact", "OrderCreate", "OrderFeed", "OrderItem", "OrderLineCreate"]


class OrderLineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(pattern=ID_PATTERN)
    # strict: JSON true or "1" is no quantity (lax mode would read both as 1)
    quantity: int = Field(ge=1, le=100, strict=True)


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[OrderLineCreate] = Field(min_length=1, max_length=20)

    @field_validator("lines")
    @classmethod
    def _one_line_per_product(cls, lines: list[OrderLineCreate]) -> list[OrderLineCreate]:
        if len({line.product_id for line in lines}) != len(lines):
            raise ValueError("each product may appear once")
        return lines


class OrderItem(BaseModel):
    product_id: str
    name: str
    quantity: int


class OrderCompact(BaseModel):
    id: str
    status: str
    total: int = Field(description="minor units of `currency`")
    currency: str
    created_at: datetime
    items: list[OrderItem]


class OrderFeed(BaseModel):
    items: list[OrderCompact]
    next_cursor: str | None
