"""Mobile feed: catalog's page reduced to what an app row needs, with an opaque cursor."""

from __future__ import annotations

import base64
from typing import Any

from chassis import Downstream, ServiceError
from gateway_mobile.products.schemas import ProductCompact, ProductFeed

__all__ = ["list_products"]


def _encode(page: int) -> str:
    return base64.urlsafe_b64encode(f"p{page}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        page = int(raw.removeprefix("p"))
    except (ValueError, UnicodeDecodeError):
        raise ServiceError("cursor is not one this API issued", status=400, title="Bad cursor") from None
    if page < 1:
        raise ServiceError("cursor is not one this API issued", status=400, title="Bad cursor")
    return page


async def list_products(*, catalog: Downstream, cursor: str | None, limit: int) -> ProductFeed:
    page = _decode(cursor) if cursor else 1
    body: dict[str, Any] = await catalog.get_json("/products", params={"page": page, "size": limit})
    items = [
        ProductCompact(id=p["id"], name=p["name"], price=p["price_cents"], thumb_url=p.get("image_url", ""))
        for p in body["items"]
    ]
    more = page * limit < body["total"]
    return ProductFeed(items=items, next_cursor=_encode(page + 1) if more else None)
