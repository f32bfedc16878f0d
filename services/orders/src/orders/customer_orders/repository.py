"""The only code that touches the orders SQLite file: orders, their lines, and idempotency keys.

An idempotency key row is written *before* stock is reserved and names the order id used for
the reservation, so every reservation orders ever asks for is traceable to a row here until
the order exists or the reservation is released (see ``service.recover_abandoned``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from orders.customer_orders.seed import DEMO_ORDERS

__all__ = [
    "SCHEMA",
    "Claim",
    "claim_key",
    "drop_claim",
    "fetch_order",
    "insert_order",
    "mark_releasing",
    "page_for_user",
    "purge_expired_keys",
    "seed",
    "stale_claims",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id          TEXT PRIMARY KEY,
    user        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('confirmed', 'delivered')),
    total_cents INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user, created_at DESC);
CREATE TABLE IF NOT EXISTS order_lines (
    order_id         TEXT NOT NULL REFERENCES orders (id),
    product_id       TEXT NOT NULL,
    name             TEXT NOT NULL,
    unit_price_cents INTEGER NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    line_total_cents INTEGER NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    user         TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    order_id     TEXT NOT NULL UNIQUE,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'releasing', 'done')),
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (user, key)
);
"""

ClaimState = Literal["claimed", "done", "mismatch", "in_progress"]


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    order_id: str


def _now() -> datetime:
    return datetime.now(UTC)


def seed(conn: sqlite3.Connection) -> None:
    for order_id, user, created_at, lines in DEMO_ORDERS:
        total = sum(price * quantity for _, _, price, quantity in lines)
        cursor = conn.execute(
            "INSERT OR IGNORE INTO orders (id, user, status, total_cents, currency, created_at) "
            "VALUES (?, ?, 'delivered', ?, 'EUR', ?)",
            (order_id, user, total, created_at),
        )
        if cursor.rowcount == 1:
            conn.executemany(
                "INSERT INTO order_lines VALUES (?, ?, ?, ?, ?, ?)",
                [(order_id, pid, name, price, qty, price * qty) for pid, name, price, qty in lines],
            )


def claim_key(
    conn: sqlite3.Connection, *, user: str, key: str, request_hash: str, order_id: str, ttl_s: float
) -> Claim:
    """Take the key for this request, or say what an earlier request with it became. A completed
    key older than ``ttl_s`` is expired: it is new again (whether or not it was purged yet)."""
    row = conn.execute(
        "SELECT request_hash, order_id, state, updated_at FROM idempotency_keys WHERE user = ? AND key = ?",
        (user, key),
    ).fetchone()
    if row is not None and row["state"] == "done" and row["updated_at"] < _cutoff(ttl_s):
        conn.execute("DELETE FROM idempotency_keys WHERE user = ? AND key = ?", (user, key))
        row = None
    if row is None:
        conn.execute(
            "INSERT INTO idempotency_keys (user, key, request_hash, order_id, state, updated_at) "
            "VALUES (?, ?, ?, ?, 'pending', ?)",
            (user, key, request_hash, order_id, _now().isoformat()),
        )
        return Claim("claimed", order_id)
    if row["request_hash"] != request_hash:
        return Claim("mismatch", row["order_id"])
    if row["state"] == "done":
        return Claim("done", row["order_id"])
    return Claim("in_progress", row["order_id"])


def _cutoff(age_s: float) -> str:
    return (_now() - timedelta(seconds=age_s)).isoformat()


def purge_expired_keys(conn: sqlite3.Connection, *, ttl_s: float) -> int:
    """Delete completed keys older than ``ttl_s``. Unfinished attempts (pending, releasing) stay:
    they trace reservations until recovery releases them."""
    cursor = conn.execute(
        "DELETE FROM idempotency_keys WHERE state = 'done' AND updated_at < ?", (_cutoff(ttl_s),)
    )
    return cursor.rowcount


def drop_claim(conn: sqlite3.Connection, order_id: str, *, states: Sequence[str] = ("pending",)) -> bool:
    """Forget an attempt that holds no stock any more, so the key can be used again."""
    marks = ", ".join("?" * len(states))
    cursor = conn.execute(
        f"DELETE FROM idempotency_keys WHERE order_id = ? AND state IN ({marks})", (order_id, *states)
    )
    return cursor.rowcount == 1


def insert_order(
    conn: sqlite3.Connection, *, order_id: str, user: str, currency: str, lines: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """Store the order and complete its key in one transaction; None if the attempt was abandoned
    meanwhile (its reservation is being released, so the order must not exist)."""
    cursor = conn.execute(
        "UPDATE idempotency_keys SET state = 'done', updated_at = ? WHERE order_id = ? AND state = 'pending'",
        (_now().isoformat(), order_id),
    )
    if cursor.rowcount != 1:
        return None
    total = sum(int(line["line_total_cents"]) for line in lines)
    conn.execute(
        "INSERT INTO orders (id, user, status, total_cents, currency, created_at) VALUES (?, ?, 'confirmed', ?, ?, ?)",
        (order_id, user, total, currency, _now().isoformat()),
    )
    conn.executemany(
        "INSERT INTO order_lines (order_id, product_id, name, unit_price_cents, quantity, line_total_cents) "
        "VALUES (:order_id, :product_id, :name, :unit_price_cents, :quantity, :line_total_cents)",
        [{**line, "order_id": order_id} for line in lines],
    )
    return fetch_order(conn, order_id)


def fetch_order(conn: sqlite3.Connection, order_id: str, *, user: str | None = None) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
    if row is None or (user is not None and row["user"] != user):
        return None
    lines = conn.execute(
        "SELECT product_id, name, unit_price_cents, quantity, line_total_cents FROM order_lines "
        "WHERE order_id = ? ORDER BY rowid",
        (order_id,),
    ).fetchall()
    return {**dict(row), "lines": [dict(line) for line in lines]}


def page_for_user(
    conn: sqlite3.Connection, user: str, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    total = conn.execute("SELECT COUNT(*) FROM orders WHERE user = ?", (user,)).fetchone()[0]
    ids = conn.execute(
        "SELECT id FROM orders WHERE user = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        (user, limit, offset),
    ).fetchall()
    orders = [fetch_order(conn, row["id"]) for row in ids]
    return [order for order in orders if order is not None], int(total)


def stale_claims(conn: sqlite3.Connection, *, older_than_s: float) -> list[str]:
    """Order ids of attempts that neither finished nor cleaned up after themselves."""
    cutoff = (_now() - timedelta(seconds=older_than_s)).isoformat()
    rows = conn.execute(
        "SELECT order_id FROM idempotency_keys WHERE state IN ('pending', 'releasing') AND updated_at < ?",
        (cutoff,),
    ).fetchall()
    return [row["order_id"] for row in rows]


def mark_releasing(conn: sqlite3.Connection, order_id: str) -> bool:
    """Take an abandoned attempt away from its request: from now on it can only be released."""
    cursor = conn.execute(
        "UPDATE idempotency_keys SET state = 'releasing' WHERE order_id = ? AND state IN ('pending', 'releasing')",
        (order_id,),
    )
    return cursor.rowcount == 1
