"""inventory use cases: stock levels and reservations idempotent by order id."""

from __future__ import annotations

import logging
from dataclasses import asdict

from chassis.store import Database
from inventory.stock import repository
from inventory.stock.errors import (
    InsufficientStock,
    ReservationConflict,
    ReservationNotFound,
    StockBelowReserved,
    UnknownSku,
)
from inventory.stock.schemas import ReservationCreate, ReservationPublic, StockBatch, StockLevel, StockUpdate

__all__ = ["get_reservation", "get_stock", "release", "reserve", "set_stock"]

log = logging.getLogger(__name__)


def _level(row: dict[str, int | str]) -> StockLevel:
    on_hand, reserved = int(row["on_hand"]), int(row["reserved"])
    return StockLevel(
        sku=str(row["sku"]),
        on_hand=on_hand,
        reserved=reserved,
        available=on_hand - reserved,
        in_stock=on_hand > reserved,
    )


async def get_stock(*, db: Database, skus: list[str]) -> StockBatch:
    unique = list(dict.fromkeys(skus))
    rows = await db.read(lambda conn: repository.stock_levels(conn, unique))
    return StockBatch(
        items=[_level(rows[s]) for s in unique if s in rows], missing=[s for s in unique if s not in rows]
    )


async def reserve(*, db: Database, request: ReservationCreate) -> tuple[ReservationPublic, bool]:
    """The reservation and whether this call created it (False: an identical earlier one)."""
    lines = [(line.sku, line.quantity) for line in request.lines]
    outcome = await db.write(lambda conn: repository.reserve(conn, request.order_id, lines))
    if outcome.unknown:
        raise UnknownSku(
            f"Unknown SKUs: {', '.join(outcome.unknown)}.",
            status=422,
            extras={"unknown_skus": list(outcome.unknown)},
        )
    if outcome.insufficient:
        raise InsufficientStock(
            "Not enough stock for every line; nothing was reserved.",
            extras={"insufficient": [asdict(item) for item in outcome.insufficient]},
        )
    if outcome.conflict:
        raise ReservationConflict(f"Order {request.order_id}: {outcome.conflict}.")
    assert outcome.reservation is not None
    if outcome.created:
        log.info("reserved %s line(s) for order %s", len(lines), request.order_id)
    return ReservationPublic(**outcome.reservation), outcome.created


async def release(*, db: Database, order_id: str) -> ReservationPublic:
    row = await db.write(lambda conn: repository.release(conn, order_id))
    return ReservationPublic(**row)


async def get_reservation(*, db: Database, order_id: str) -> ReservationPublic:
    row = await db.read(lambda conn: repository.fetch_reservation(conn, order_id))
    if row is None:
        raise ReservationNotFound(f"No reservation for order {order_id!r}.")
    return ReservationPublic(**row)


async def set_stock(*, db: Database, sku: str, update: StockUpdate) -> tuple[StockLevel, bool]:
    """The new level and whether the SKU is new to inventory."""
    result = await db.write(lambda conn: repository.set_on_hand(conn, sku, update.on_hand))
    if result is None:
        raise StockBelowReserved("More units are reserved than that; release reservations first.")
    row, created = result
    log.info("stock of %s set to %s", sku, update.on_hand)
    return _level(row), created
