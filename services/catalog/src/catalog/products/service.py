"""Catalog use cases: the router calls these, these call the repository on the store's thread."""

from __future__ import annotations

import uuid

from catalog.products import repository
from catalog.products.errors import InvalidUpdate, ProductExists, ProductNotFound
from catalog.products.schemas import ProductBatch, ProductCreate, ProductPage, ProductPublic, ProductUpdate
from chassis.store import Database

__all__ = [
    "create_product",
    "get_product",
    "get_products",
    "list_products",
    "update_product",
]


async def list_products(
    *, db: Database, page: int, size: int, q: str | None, category: str | None, after: str | None = None
) -> ProductPage:
    offset = 0 if after is not None else (page - 1) * size
    rows, total = await db.read(
        lambda conn: repository.search(conn, q=q, category=category, offset=offset, limit=size, after=after)
    )
    items = [ProductPublic(**row) for row in rows]
    next_after = items[-1].id if len(items) == size else None
    return ProductPage(items=items, page=page, size=size, total=total, next_after=next_after)


async def get_product(*, db: Database, product_id: str) -> ProductPublic:
    row = await db.read(lambda conn: repository.fetch_one(conn, product_id))
    if row is None:
        raise ProductNotFound(f"No product with id {product_id!r}.")
    return ProductPublic(**row)


async def get_products(*, db: Database, ids: list[str]) -> ProductBatch:
    unique = list(dict.fromkeys(ids))
    found = await db.read(lambda conn: repository.fetch_many(conn, unique))
    return ProductBatch(
        items=[ProductPublic(**found[i]) for i in unique if i in found],
        missing=[i for i in unique if i not in found],
    )


async def create_product(*, db: Database, product: ProductCreate) -> ProductPublic:
    values = product.model_dump()
    values["id"] = product.id or f"p-{uuid.uuid4().hex[:10]}"
    row = await db.write(lambda conn: repository.insert(conn, values))
    if row is None:
        raise ProductExists(f"A product with id {values['id']!r} exists.")
    return ProductPublic(**row)


async def update_product(*, db: Database, product_id: str, changes: ProductUpdate) -> ProductPublic:
    values = changes.model_dump(exclude_unset=True)
    if any(value is None for value in values.values()):
        raise InvalidUpdate("Fields cannot be set to null.")
    row = await db.write(lambda conn: repository.update(conn, product_id, values))
    if row is None:
        raise ProductNotFound(f"No product with id {product_id!r}.")
    return ProductPublic(**row)
