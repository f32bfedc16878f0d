"""The only code that touches the reviews SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from reviews.product_reviews.seed import demo_reviews

__all__ = ["SCHEMA", "insert", "page_for_product", "seed", "summaries"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id TEXT NOT NULL,
    author     TEXT NOT NULL,
    rating     INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title      TEXT NOT NULL,
    body       TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    UNIQUE (product_id, author)
);
CREATE INDEX IF NOT EXISTS reviews_by_product ON reviews (product_id, created_at DESC);
"""


def seed(conn: sqlite3.Connection) -> None:
    """(product, author) is unique, so seeding again inserts nothing."""
    conn.executemany(
        "INSERT OR IGNORE INTO reviews (product_id, author, rating, title, body, created_at) "
        "VALUES (:product_id, :author, :rating, :title, :body, :created_at)",
        demo_reviews(),
    )


_ORDER = {"newest": "created_at DESC, id DESC", "top": "rating DESC, created_at DESC, id DESC"}


def page_for_product(
    conn: sqlite3.Connection, product_id: str, *, offset: int, limit: int, sort: str = "newest"
) -> tuple[list[dict[str, Any]], int]:
    total = conn.execute("SELECT COUNT(*) FROM reviews WHERE product_id = ?", (product_id,)).fetchone()[0]
    rows = conn.execute(
        f"SELECT * FROM reviews WHERE product_id = ? ORDER BY {_ORDER[sort]} LIMIT ? OFFSET ?",
        (product_id, limit, offset),
    ).fetchall()
    return [dict(row) for row in rows], int(total)


def summaries(conn: sqlite3.Connection, product_ids: Sequence[str]) -> dict[str, tuple[float, int]]:
    if not product_ids:
        return {}
    marks = ", ".join("?" * len(product_ids))
    rows = conn.execute(
        f"SELECT product_id, AVG(rating), COUNT(*) FROM reviews WHERE product_id IN ({marks}) GROUP BY product_id",
        list(product_ids),
    ).fetchall()
    return {row[0]: (float(row[1]), int(row[2])) for row in rows}


def insert(conn: sqlite3.Connection, review: dict[str, Any]) -> dict[str, Any] | None:
    """The stored review, or None when this author already reviewed the product."""
    row = {**review, "created_at": datetime.now(UTC).isoformat()}
    cursor = conn.execute(
        "INSERT OR IGNORE INTO reviews (product_id, author, rating, title, body, created_at) "
        "VALUES (:product_id, :author, :rating, :title, :body, :created_at)",
        row,
    )
    if cursor.rowcount != 1:
        return None
    return {**row, "id": cursor.lastrowid}
