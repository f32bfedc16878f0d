"""The only code that touches inventory's SQLite file. Every function runs in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from inventory.stock.seed import DEMO_STOCK

__all__ = [
    "SCHEMA",
    "Insufficient",
    "ReserveOutcome",
    "fetch_reservation",
    "release",
    "reserve",
    "seed",
    "set_on_hand",
    "stock_levels",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (
    sku      TEXT PRIMARY KEY,
    on_hand  INTEGER NOT NULL CHECK (on_hand >= 0),
    reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand)
);
CREATE TABLE IF NOT EXISTS reservations (
    order_id   TEXT PRIMARY KEY,
    status     TEXT NOT NULL CHECK (status IN ('reserved', 'released')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reservation_lines (
    order_id TEXT NOT NULL REFERENCES reservations (order_id),
    sku      TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, sku)
);
"""


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


def seed(conn: sqlite3.Connection) -> None:
    conn.executemany("INSERT OR IGNORE INTO stock (sku, on_hand) VALUES (?, ?)", DEMO_STOCK.items())


def stock_levels(conn: sqlite3.Connection, skus: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not skus:
        return {}
    marks = ", ".join("?" * len(skus))
    rows = conn.execute(f"SELECT sku, on_hand, reserved FROM stock WHERE sku IN ({marks})", list(skus))
    return {row["sku"]: dict(row) for row in rows}


def fetch_reservation(conn: sqlite3.Connection, order_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM reservations WHERE order_id = ?", (order_id,)).fetchone()
    if row is None:
        return None
    lines = conn.execute(
        "SELECT sku, quantity FROM reservation_lines WHERE order_id = ? ORDER BY sku", (order_id,)
    ).fetchall()
    return {**dict(row), "lines": [dict(line) for line in lines]}


def reserve(conn: sqlite3.Connection, order_id: str, lines: Sequence[tuple[str, int]]) -> ReserveOutcome:
    """All lines or none. The same order id with the same lines returns the existing reservation."""
    existing = fetch_reservation(conn, order_id)
    if existing is not None:
        if existing["status"] == "released":
            return ReserveOutcome(existing, conflict="the reservation of this order was released")
        if sorted((line["sku"], line["quantity"]) for line in existing["lines"]) != sorted(lines):
            return ReserveOutcome(existing, conflict="this order id was reserved with other lines")
        return ReserveOutcome(existing)
    levels = stock_levels(conn, [sku for sku, _ in lines])
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
    now = _now()
    conn.execute(
        "INSERT INTO reservations (order_id, status, created_at, updated_at) VALUES (?, 'reserved', ?, ?)",
        (order_id, now, now),
    )
    for sku, quantity in lines:
        conn.execute(
            "INSERT INTO reservation_lines (order_id, sku, quantity) VALUES (?, ?, ?)",
            (order_id, sku, quantity),
        )
        conn.execute("UPDATE stock SET reserved = reserved + ? WHERE sku = ?", (quantity, sku))
    return ReserveOutcome(fetch_reservation(conn, order_id), created=True)


def release(conn: sqlite3.Connection, order_id: str) -> dict[str, Any]:
    """Give the units back, once. Releasing an unknown order id leaves a tombstone, so a reserve
    that arrives late (after its caller gave up and released) cannot hold stock."""
    existing = fetch_reservation(conn, order_id)
    now = _now()
    if existing is None:
        conn.execute(
            "INSERT INTO reservations (order_id, status, created_at, updated_at) VALUES (?, 'released', ?, ?)",
            (order_id, now, now),
        )
    elif existing["status"] == "reserved":
        for line in existing["lines"]:
            conn.execute(
                "UPDATE stock SET reserved = reserved - ? WHERE sku = ?", (line["quantity"], line["sku"])
            )
        conn.execute(
            "UPDATE reservations SET status = 'released', updated_at = ? WHERE order_id = ?", (now, order_id)
        )
    result = fetch_reservation(conn, order_id)
    assert result is not None
    return result


def set_on_hand(conn: sqlite3.Connection, sku: str, on_hand: int) -> tuple[dict[str, Any], bool] | None:
    """(level, created), or None when fewer units than are reserved would be left."""
    level = stock_levels(conn, [sku]).get(sku)
    if level is None:
        conn.execute("INSERT INTO stock (sku, on_hand) VALUES (?, ?)", (sku, on_hand))
        return {"sku": sku, "on_hand": on_hand, "reserved": 0}, True
    if on_hand < level["reserved"]:
        return None
    conn.execute("UPDATE stock SET on_hand = ? WHERE sku = ?", (on_hand, sku))
    return {**level, "on_hand": on_hand}, False
