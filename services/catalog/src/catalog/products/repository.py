"""The only code that touches the catalog's SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from catalog.products.seed import DEMO_PRODUCTS

__all__ = ["SCHEMA", "fetch_many", "fetch_one", "insert", "search", "seed", "update"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    category    TEXT NOT NULL,
    brand       TEXT NOT NULL DEFAULT '',
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    currency    TEXT NOT NULL DEFAULT 'EUR',
    description TEXT NOT NULL DEFAULT '',
    image_url   TEXT NOT NULL DEFAULT '',
    thumb_url   TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS products_category ON products (category, id);
"""

_COLUMNS = (
    "id", "name", "category", "brand", "price_cents", "currency",
    "description", "image_url", "thumb_url", "created_at", "updated_at",
)  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).isoformat()


def seed(conn: sqlite3.Connection) -> None:
    """Insert the demo products that are not there yet (a restart changes nothing)."""
    now = _now()
    conn.executemany(
        f"INSERT OR IGNORE INTO products ({', '.join(_COLUMNS)}) "
        f"VALUES ({', '.join(':' + c for c in _COLUMNS)})",
        [{**product, "created_at": now, "updated_at": now} for product in DEMO_PRODUCTS],
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(
    conn: sqlite3.Connection,
    *,
    q: str | None,
    category: str | None,
    offset: int,
    limit: int,
    after: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of matching products by id, and how many match in all (``after`` does not change that)."""
    where: list[str] = []
    params: list[Any] = []
    if q:
        where.append(
            "(name LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\' OR brand LIKE ? ESCAPE '\\')"
        )
        params += [_like(q)] * 3
    if category:
        where.append("category = ?")
        params.append(category)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(f"SELECT COUNT(*) FROM products {clause}", params).fetchone()[0]
    if after is not None:  # keyset: the page starts after this id, whatever was added before it
        clause = f"{clause} AND id > ?" if clause else "WHERE id > ?"
        params.append(after)
    rows = conn.execute(
        f"SELECT * FROM products {clause} ORDER BY id LIMIT ? OFFSET ?", [*params, limit, offset]
    ).fetchall()
    return [dict(row) for row in rows], int(total)


def fetch_one(conn: sqlite3.Connection, product_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM products WHERE id = ?", (product_id,)).fetchone()
    return dict(row) if row else None


def fetch_many(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    rows = conn.execute(f"SELECT * FROM products WHERE id IN ({marks})", list(ids)).fetchall()
    return {row["id"]: dict(row) for row in rows}


def insert(conn: sqlite3.Connection, product: Mapping[str, Any]) -> dict[str, Any] | None:
    """The new product, or None when the id is taken."""
    now = _now()
    row = {**product, "created_at": now, "updated_at": now}
    cursor = conn.execute(
        f"INSERT OR IGNORE INTO products ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)})",
        row,
    )
    return row if cursor.rowcount == 1 else None


def update(conn: sqlite3.Connection, product_id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
    if fetch_one(conn, product_id) is None:
        return None
    if changes:
        assignments = ", ".join(f"{column} = :{column}" for column in changes if column in _COLUMNS)
        conn.execute(
            f"UPDATE products SET {assignments}, updated_at = :updated_at WHERE id = :id",
            {**changes, "updated_at": _now(), "id": product_id},
        )
    return fetch_one(conn, product_id)
