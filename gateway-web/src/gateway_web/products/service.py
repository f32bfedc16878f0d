"""Web listing: catalog's page shaped for the browser."""

from __future__ import annotations

from typing import Any

from chassis import Downstream
from gateway_web.products.schemas import ProductCard, ProductListing

__all__ = ["list_products"]


async def list_products(*, catalog: Downstream, page: int, size: int) -> ProductListing:
    body: dict[str, Any] = await catalog.get_json("/products", params={"page": page, "size": size})
    cards = [
        ProductCard(
            id=p["id"],
            name=p["name"],
            category=p["category"],
            description=p.get("description", ""),
            price=f"{p['price_cents'] / 100:.2f} {p.get('currency', 'EUR')}",
            price_cents=p["price_cents"],
            currency=p.get("currency", "EUR"),
            image_url=p.get("image_url", ""),
        )
        for p in body["items"]
    ]
    return ProductListing(items=cards, page=body["page"], size=body["size"], total=body["total"])
