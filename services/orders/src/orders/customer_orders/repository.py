"""The only code that touches the orders store (SQLite or PostgreSQL): orders, their lines, and
idempotency keys. ``user`` is a reserved word in PostgreSQL, so the SQL quotes it.

An idempotency key row is written *before* stock is reserved and names the order id used for
the reservation, so every reservation orders ever asks for is traceable to a row here until
the order exists or the reservation is released (see ``service.recover_abandoned``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, text

from chassis.store import for_update
from orders.customer_orders.seed import DEMO_ORDERS

__all__ = [
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

ClaimState = Literal["claimed", "done", "mismatch", "in_progress"]


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    order_id: str


def _now() -> datetime:
    return datetime.now(UTC)


_INSERT_LINES = text(
    "INSERT INTO order_lines (order_id, line_no, product_id, name, unit_price_cents, quantity, line_total_cents) "
    "VALUES (:order_id, :line_no, :product_id, :name, :unit_price_cents, :quantity, :line_total_cents)"
)


def seed(conn: Connection) -> None:
    for order_id, user, created_at, lines in DEMO_ORDERS:
        total = sum(price * quantity for _, _, price, quantity in lines)
        cursor = conn.execute(
            text(
                'INSERT INTO orders (id, "user", status, total_cents, currency, created_at) '
                "VALUES (:id, :user, 'delivered', :total, 'EUR', :created_at) ON CONFLICT (id) DO NOTHING"
            ),
            {"id": order_id, "user": user, "total": total, "created_at": created_at},
        )
        if cursor.rowcount == 1:
            conn.execute(
                _INSERT_LINES,
                [
                    {"order_id": order_id, "line_no": n, "product_id": pid, "name": name,
                     "unit_price_cents": price, "quantity": qty, "line_total_cents": price * qty}
                    for n, (pid, name, price, qty) in enumerate(lines, start=1)
                ],
            )  # fmt: skip


def claim_key(
    conn: Connection, *, user: str, key: str, request_hash: str, order_id: str, ttl_s: float
) -> Claim:
    """Take the key for this request, or say what an earlier request with it became. A completed
    key older than ``ttl_s`` is expired: it is new again (whether or not it was purged yet)."""
    key_of = {"user": user, "key": key}
    row = (
        conn.execute(
            text(
                "SELECT request_hash, order_id, state, updated_at FROM idempotency_keys "
                f'WHERE "user" = :user AND key = :key{for_update(conn)}'
            ),
            key_of,
        )
        .mappings()
        .first()
    )
    if row is not None and row["state"] == "done" and row["updated_at"] < _cutoff(ttl_s):
        conn.execute(text('DELETE FROM idempotency_keys WHERE "user" = :user AND key = :key'), key_of)
        row = None
    if row is None:
        conn.execute(
            text(
                'INSERT INTO idempotency_keys ("user", key, request_hash, order_id, state, updated_at) '
                "VALUES (:user, :key, :request_hash, :order_id, 'pending', :now)"
            ),
            {**key_of, "request_hash": request_hash, "order_id": order_id, "now": _now().isoformat()},
        )
        return Claim("claimed", order_id)
    if row["request_hash"] != request_hash:
        return Claim("mismatch", row["order_id"])
    if row["state"] == "done":
        return Claim("done", row["order_id"])
    return Claim("in_progress", row["order_id"])


def _cutoff(age_s: float) -> str:
    return (_now() - timedelta(seconds=age_s)).isoformat()


def purge_expired_keys(conn: Connection, *, ttl_s: float) -> int:
    """Delete completed keys older than ``ttl_s``. Unfinished attempts (pending, releasing) stay:
    they trace reservations until recovery releases them."""
    cursor = conn.execute(
        text("DELETE FROM idempotency_keys WHERE state = 'done' AND updated_at < :cutoff"),
        {"cutoff": _cutoff(ttl_s)},
    )
    return cursor.rowcount


_DROP_CLAIM = text("DELETE FROM idempotency_keys WHERE order_id = :order_id AND state IN :states").bindparams(
    bindparam("states", expanding=True)
)


def drop_claim(conn: Connection, order_id: str, *, states: Sequence[str] = ("pending",)) -> bool:
    """Forget an attempt that holds no stock any more, so the key can be used again."""
    return conn.execute(_DROP_CLAIM, {"order_id": order_id, "states": list(states)}).rowcount == 1


def insert_order(
    conn: Connection, *, order_id: str, user: str, currency: str, lines: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """Store the order and complete its key in one transaction; None if the attempt was abandoned
    meanwhile (its reservation is being released, so the order must not exist)."""
    cursor = conn.execute(
        text(
            "UPDATE idempotency_keys SET state = 'done', updated_at = :now "
            "WHERE order_id = :order_id AND state = 'pending'"
        ),
        {"now": _now().isoformat(), "order_id": order_id},
    )
    if cursor.rowcount != 1:
        return None
    total = sum(int(line["line_total_cents"]) for line in lines)
    conn.execute(
        text(
            'INSERT INTO orders (id, "user", status, total_cents, currency, created_at) '
            "VALUES (:id, :user, 'confirmed', :total, :currency, :now)"
        ),
        {"id": order_id, "user": user, "total": total, "currency": currency, "now": _now().isoformat()},
    )
    conn.execute(
        _INSERT_LINES,
        [{**line, "order_id": order_id, "line_no": n} for n, line in enumerate(lines, start=1)],
    )
    return fetch_order(conn, order_id)


def fetch_order(conn: Connection, order_id: str, *, user: str | None = None) -> dict[str, Any] | None:
    row = conn.execute(text("SELECT * FROM orders WHERE id = :id"), {"id": order_id}).mappings().first()
    if row is None or (user is not None and row["user"] != user):
        return None
    lines = conn.execute(
        text(
            "SELECT product_id, name, unit_price_cents, quantity, line_total_cents FROM order_lines "
            "WHERE order_id = :id ORDER BY line_no, product_id"
        ),
        {"id": order_id},
    ).mappings()
    return {**dict(row), "lines": [dict(line) for line in lines]}


def page_for_user(
    conn: Connection, user: str, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    total = conn.execute(
        text('SELECT COUNT(*) FROM orders WHERE "user" = :user'), {"user": user}
    ).scalar_one()
    ids = conn.execute(
        text(
            'SELECT id FROM orders WHERE "user" = :user ORDER BY created_at DESC, id DESC '
            "LIMIT :limit OFFSET :offset"
        ),
        {"user": user, "limit": limit, "offset": offset},
    ).scalars()
    orders = [fetch_order(conn, order_id) for order_id in ids.all()]
    return [order for order in orders if order is not None], int(total)


def stale_claims(conn: Connection, *, older_than_s: float) -> list[str]:
    """Order ids of attempts that neither finished nor cleaned up after themselves."""
    rows = conn.execute(
        text(
            "SELECT order_id FROM idempotency_keys "
            "WHERE state IN ('pending', 'releasing') AND updated_at < :cutoff"
        ),
        {"cutoff": _cutoff(older_than_s)},
    ).scalars()
    return list(rows)


def mark_releasing(conn: Connection, order_id: str) -> bool:
    """Take an abandoned attempt away from its request: from now on it can only be released."""
    cursor = conn.execute(
        text(
            "UPDATE idempotency_keys SET state = 'releasing' "
            "WHERE order_id = :order_id AND state IN ('pending', 'releasing')"
        ),
        {"order_id": order_id},
    )
    return cursor.rowcount == 1
