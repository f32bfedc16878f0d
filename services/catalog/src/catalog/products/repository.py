"""The only code that touches the catalog's store (SQLite or PostgreSQL: the SQL runs on both)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text

from catalog.products.seed import DEMO_PRODUCTS

__all__ = ["fetch_many", "fetch_one", "insert", "search", "seed", "update"]

_COLUMNS = (
    "id", "name", "category", "brand", "price_cents", "currency",
    "description", "image_url", "thumb_url", "created_at", "updated_at",
)  # fmt: skip


def _now() -> str:
    return datetime.now(UTC).isoformat()


_INSERT = text(
    f"INSERT INTO products ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)}) "
    "ON CONFLICT (id) DO NOTHING"
)


def seed(conn: Connection) -> None:
    """Insert the demo products that are not there yet (a restart changes nothing)."""
    now = _now()
    conn.execute(_INSERT, [{**product, "created_at": now, "updated_at": now} for product in DEMO_PRODUCTS])


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(
    conn: Connection,
    *,
    q: str | None,
    category: str | None,
    offset: int,
    limit: int,
    after: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of matching products by id, and how many match in all (``after`` does not change that)."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if q:  # case-insensitive on both engines (SQLite's LIKE is, PostgreSQL's is not)
        where.append(
            "(LOWER(name) LIKE :q ESCAPE '\\' OR LOWER(description) LIKE :q ESCAPE '\\' "
            "OR LOWER(brand) LIKE :q ESCAPE '\\')"
        )
        params["q"] = _like(q.lower())
    if category:
        where.append("category = :category")
        params["category"] = category
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(text(f"SELECT COUNT(*) FROM products {clause}"), params).scalar_one()
    if after is not None:  # keyset: the page starts after this id, whatever was added before it
        clause = f"{clause} AND id > :after" if clause else "WHERE id > :after"
        params["after"] = after
    rows = conn.execute(
        text(f"SELECT * FROM products {clause} ORDER BY id LIMIT :limit OFFSET :offset"),
        {**params, "limit": limit, "offset": offset},
    ).mappings()
    return [dict(row) for row in rows], int(total)


def fetch_one(conn: Connection, product_id: str) -> dict[str, Any] | None:
    row = conn.execute(text("SELECT * FROM products WHERE id = :id"), {"id": product_id}).mappings().first()
    return dict(row) if row else None


_FETCH_MANY = text("SELECT * FROM products WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))


def fetch_many(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    rows = conn.execute(_FETCH_MANY, {"ids": list(ids)}).mappings()
    return {row["id"]: dict(row) for row in rows}


def insert(conn: Connection, product: Mapping[str, Any]) -> dict[str, Any] | None:
    """The new product, or None when the id is taken."""
    now = _now()
    row = {**product, "created_at": now, "updated_at": now}
    return row if conn.execute(_INSERT, row).rowcount == 1 else None


def update(conn: Connection, product_id: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
    if fetch_one(conn, product_id) is None:
        return None
    if changes:
        assignments = ", ".join(f"{column} = :{column}" for column in changes if column in _COLUMNS)
        conn.execute(
            text(f"UPDATE products SET {assignments}, updated_at = :updated_at WHERE id = :id"),
            {**changes, "updated_at": _now(), "id": product_id},
        )
    return fetch_one(conn, product_id)
