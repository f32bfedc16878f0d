"""inventory's JSON shapes (what OpenAPI at /docs shows)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chassis.params import ID_PATTERN

__all__ = [
    "ReservationCreate",
    "StockUpdate",
    "ReservationLine",
    "ReservationPublic",
    "StockBatch",
    "StockLevel",
]

SKU = Field(pattern=ID_PATTERN)


class StockLevel(BaseModel):
    sku: str
    on_hand: int = Field(description="units in the warehouse")
    reserved: int = Field(description="units held by open reservations")
    available: int = Field(description="on_hand - reserved: what can still be reserved")
    in_stock: bool


class StockBatch(BaseModel):
    items: list[StockLevel] = Field(description="known SKUs, in the order asked")
    missing: list[str] = Field(description="asked SKUs that inventory does not know")


class StockUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_hand: int = Field(ge=0, le=1_000_000, strict=True, description="units in the warehouse from now on")


class ReservationLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = SKU
    quantity: int = Field(ge=1, le=1000, strict=True)


class ReservationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    lines: list[ReservationLine] = Field(min_length=1, max_length=50)

    @field_validator("lines")
    @classmethod
    def _one_line_per_sku(cls, lines: list[ReservationLine]) -> list[ReservationLine]:
        if len({line.sku for line in lines}) != len(lines):
            raise ValueError("each sku may appear once")
        return lines


class ReservationPublic(BaseModel):
    order_id: str
    status: Literal["reserved", "released"]
    lines: list[ReservationLine]
    created_at: datetime
    updated_at: datetime
