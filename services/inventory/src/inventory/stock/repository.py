"""The only code that touches inventory's store (SQLite or PostgreSQL). Every function runs in one
transaction; the CHECK on ``reserved <= on_hand`` is what no concurrent replica can get past."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text

from chassis.store import for_update
from inventory.stock.seed import DEMO_STOCK

__all__ = [
    "Insufficient",
    "ReserveOutcome",
    "fetch_reservation",
    "release",
    "reserve",
    "seed",
    "set_on_hand",
    "stock_levels",
]


@dataclass(frozen=True)
class Insufficient:
    sku: str
    requested: int
    available: int


@dataclass(frozen=True)
class ReserveOutcome:
    reservation: dict[str, Any] | None = None
    created: bool = False
    unknown: tuple[str, ...] = ()
    insufficient: tuple[Insufficient, ...] = ()
    conflict: str | None = None  # why the order id cannot take these lines


def _now() -> str:
    return datetime.now(UTC).isoformat()


def seed(conn: Connection) -> None:
    conn.execute(
        text("INSERT INTO stock (sku, on_hand) VALUES (:sku, :on_hand) ON CONFLICT (sku) DO NOTHING"),
        [{"sku": sku, "on_hand": on_hand} for sku, on_hand in DEMO_STOCK.items()],
    )


def stock_levels(conn: Connection, skus: Sequence[str], *, lock: bool = False) -> dict[str, dict[str, Any]]:
    """Levels by SKU; ``lock``: held until the transaction ends (in SKU order, so two reservations
    of the same SKUs never wait for each other in a circle)."""
    if not skus:
        return {}
    locking = for_update(conn) if lock else ""
    query = text(f"SELECT sku, on_hand, reserved FROM stock WHERE sku IN :skus ORDER BY sku{locking}")
    rows = conn.execute(query.bindparams(bindparam("skus", expanding=True)), {"skus": list(skus)})
    return {row["sku"]: dict(row) for row in rows.mappings()}


def fetch_reservation(conn: Connection, order_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    locking = for_update(conn) if lock else ""
    row = (
        conn.execute(text(f"SELECT * FROM reservations WHERE order_id = :id{locking}"), {"id": order_id})
        .mappings()
        .first()
    )
    if row is None:
        return None
    lines = conn.execute(
        text("SELECT sku, quantity FROM reservation_lines WHERE order_id = :id ORDER BY sku"),
        {"id": order_id},
    ).mappings()
    return {**dict(row), "lines": [dict(line) for line in lines]}


_NEW_RESERVATION = text(
    "INSERT INTO reservations (order_id, status, created_at, updated_at) VALUES (:id, :status, :now, :now)"
)


def reserve(conn: Connection, order_id: str, lines: Sequence[tuple[str, int]]) -> ReserveOutcome:
    """All lines or none. The same order id with the same lines returns the existing reservation."""
    existing = fetch_reservation(conn, order_id)
    if existing is not None:
        if existing["status"] == "released":
            return ReserveOutcome(existing, conflict="the reservation of this order was released")
        if sorted((line["sku"], line["quantity"]) for line in existing["lines"]) != sorted(lines):
            return ReserveOutcome(existing, conflict="this order id was reserved with other lines")
        return ReserveOutcome(existing)
    levels = stock_levels(conn, [sku for sku, _ in lines], lock=True)
    unknown = tuple(sku for sku, _ in lines if sku not in levels)
    if unknown:
        return ReserveOutcome(unknown=unknown)
    short = tuple(
        Insufficient(sku, quantity, levels[sku]["on_hand"] - levels[sku]["reserved"])
        for sku, quantity in lines
        if levels[sku]["on_hand"] - levels[sku]["reserved"] < quantity
    )
    if short:
        return ReserveOutcome(insufficient=short)
    conn.execute(_NEW_RESERVATION, {"id": order_id, "status": "reserved", "now": _now()})
    for sku, quantity in lines:
        conn.execute(
            text("INSERT INTO reservation_lines (order_id, sku, quantity) VALUES (:id, :sku, :quantity)"),
            {"id": order_id, "sku": sku, "quantity": quantity},
        )
        conn.execute(
            text("UPDATE stock SET reserved = reserved + :quantity WHERE sku = :sku"),
            {"quantity": quantity, "sku": sku},
        )
    return ReserveOutcome(fetch_reservation(conn, order_id), created=True)


def release(conn: Connection, order_id: str) -> dict[str, Any]:
    """Give the units back, once. Releasing an unknown order id leaves a tombstone, so a reserve
    that arrives late (after its caller gave up and released) cannot hold stock."""
    existing = fetch_reservation(conn, order_id, lock=True)  # two releases at once give back once
    now = _now()
    if existing is None:
        conn.execute(_NEW_RESERVATION, {"id": order_id, "status": "released", "now": now})
    elif existing["status"] == "reserved":
        for line in existing["lines"]:
            conn.execute(
                text("UPDATE stock SET reserved = reserved - :quantity WHERE sku = :sku"),
                {"quantity": line["quantity"], "sku": line["sku"]},
            )
        conn.execute(
            text("UPDATE reservations SET status = 'released', updated_at = :now WHERE order_id = :id"),
            {"now": now, "id": order_id},
        )
    result = fetch_reservation(conn, order_id)
    assert result is not None
    return result


def set_on_hand(conn: Connection, sku: str, on_hand: int) -> tuple[dict[str, Any], bool] | None:
    """(level, created), or None when fewer units than are reserved would be left."""
    level = stock_levels(conn, [sku], lock=True).get(sku)
    if level is None:
        conn.execute(
            text("INSERT INTO stock (sku, on_hand) VALUES (:sku, :on_hand)"), {"sku": sku, "on_hand": on_hand}
        )
        return {"sku": sku, "on_hand": on_hand, "reserved": 0}, True
    if on_hand < level["reserved"]:
        return None
    conn.execute(
        text("UPDATE stock SET on_hand = :on_hand WHERE sku = :sku"), {"on_hand": on_hand, "sku": sku}
    )
    return {**level, "on_hand": on_hand}, False
