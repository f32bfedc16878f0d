"""The only code that touches the reviews store (SQLite or PostgreSQL: the SQL runs on both)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text

from reviews.product_reviews.seed import demo_reviews

__all__ = ["insert", "page_for_product", "seed", "summaries"]

_INSERT_UNLESS_REVIEWED = (
    "INSERT INTO reviews (product_id, author, rating, title, body, created_at) "
    "VALUES (:product_id, :author, :rating, :title, :body, :created_at) "
    "ON CONFLICT (product_id, author) DO NOTHING"
)
_INSERT = text(f"{_INSERT_UNLESS_REVIEWED} RETURNING id")


def seed(conn: Connection) -> None:
    """(product, author) is unique, so seeding again inserts nothing."""
    conn.execute(text(_INSERT_UNLESS_REVIEWED), demo_reviews())


_ORDER = {"newest": "created_at DESC, id DESC", "top": "rating DESC, created_at DESC, id DESC"}


def page_for_product(
    conn: Connection, product_id: str, *, offset: int, limit: int, sort: str = "newest"
) -> tuple[list[dict[str, Any]], int, float | None]:
    """A page of the product's reviews, with how many it has and their mean rating (None: none)."""
    total, average = conn.execute(
        text("SELECT COUNT(*), AVG(rating) FROM reviews WHERE product_id = :product_id"),
        {"product_id": product_id},
    ).one()
    rows = conn.execute(
        text(
            f"SELECT * FROM reviews WHERE product_id = :product_id ORDER BY {_ORDER[sort]} LIMIT :limit OFFSET :offset"
        ),
        {"product_id": product_id, "limit": limit, "offset": offset},
    ).mappings()
    return [dict(row) for row in rows], int(total), None if average is None else float(average)


_SUMMARIES = text(
    "SELECT product_id, AVG(rating), COUNT(*) FROM reviews WHERE product_id IN :ids GROUP BY product_id"
).bindparams(bindparam("ids", expanding=True))


def summaries(conn: Connection, product_ids: Sequence[str]) -> dict[str, tuple[float, int]]:
    if not product_ids:
        return {}
    rows = conn.execute(_SUMMARIES, {"ids": list(product_ids)}).all()
    return {row[0]: (float(row[1]), int(row[2])) for row in rows}


def insert(conn: Connection, review: dict[str, Any]) -> dict[str, Any] | None:
    """The stored review, or None when this author already reviewed the product."""
    row = {**review, "created_at": datetime.now(UTC).isoformat()}
    new_id = conn.execute(_INSERT, row).scalar_one_or_none()
    return None if new_id is None else {**row, "id": new_id}
