"""Mobile product views: catalog rows reduced to what an app screen needs, stock and rating joined.

The same parts and rules as the web BFF (catalog required; inventory and reviews optional, lost ->
``null`` + ``degraded``; the whole answer within ``bff.budget_s``), shaped small for a phone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chassis import Downstream
from chassis.bff import View
from chassis.http import path_segment
from gateway_mobile.pagination import cursor_for, window
from gateway_mobile.products.schemas import (
    ProductCompact,
    ProductDetail,
    ProductFeed,
    RatingSummary,
    TopReview,
)

__all__ = ["MAX_LIMIT", "get_product", "list_products"]

MAX_LIMIT = 50
Json = Mapping[str, Any]


async def list_products(
    *,
    catalog: Downstream,
    inventory: Downstream,
    reviews: Downstream,
    budget_s: float,
    cursor: str | None,
    limit: int,
) -> ProductFeed:
    current = window(cursor, limit, MAX_LIMIT)
    async with View(budget_s) as view:
        params: dict[str, Any] = {"size": current.size}
        if current.after is not None:
            params["after"] = current.after  # keyset paging: rows inserted meanwhile shift nothing
        body: Json = await view.required("catalog", catalog.get_json("/products", params=params))
        ids = ",".join(product["id"] for product in body["items"])
        levels: dict[str, Json] | None = {}
        ratings: dict[str, Json] | None = {}
        if ids:
            stock_call = view.start(
                inventory.get_json("/stock", params={"skus": ids}, fallback=view.fallback("inventory"))
            )
            ratings_call = view.start(
                reviews.get_json("/summaries", params={"product_ids": ids}, fallback=view.fallback("reviews"))
            )
            levels = _by(await view.optional("inventory", stock_call), "sku")
            ratings = _by(await view.optional("reviews", ratings_call), "product_id")
    items = []
    for product in body["items"]:
        level = levels.get(product["id"]) if levels is not None else None
        rating = ratings.get(product["id"]) if ratings is not None else None
        items.append(
            ProductCompact(
                id=product["id"],
                name=product["name"],
                price=product["price_cents"],
                thumb_url=product.get("thumb_url", ""),
                in_stock=level["in_stock"] if level else None,
                rating=rating["average"] if rating else None,
            )
        )
    return ProductFeed(
        items=items, next_cursor=cursor_for(body.get("next_after"), current.size), degraded=view.degraded
    )


async def get_product(
    *, catalog: Downstream, inventory: Downstream, reviews: Downstream, budget_s: float, product_id: str
) -> ProductDetail:
    async with View(budget_s) as view:
        product_call = view.start(catalog.get_json(f"/products/{path_segment(product_id)}"))
        stock_call = view.start(
            inventory.get_json("/stock", params={"skus": product_id}, fallback=view.fallback("inventory"))
        )
        # reviews' page of a product carries its rating summary: one call for the rating and the top review
        top_call = view.start(
            reviews.get_json(
                f"/products/{path_segment(product_id)}/reviews",
                params={"sort": "top", "size": 1},
                fallback=view.fallback("reviews"),
            )
        )
        product: Json = await view.required("catalog", product_call)
        level = (_by(await view.optional("inventory", stock_call), "sku") or {}).get(product_id)
        top: Json | None = await view.optional("reviews", top_call)
    # no "average": a reviews older than the summary on its pages (a rolling upgrade): rating unknown
    summary = top if top is not None and "average" in top else None
    return ProductDetail(
        id=product["id"],
        name=product["name"],
        brand=product.get("brand", ""),
        description=product.get("description", ""),
        price=product["price_cents"],
        currency=product["currency"],
        image_url=product.get("image_url", ""),
        in_stock=level["in_stock"] if level else None,
        available=level["available"] if level else None,
        rating=None if summary is None else RatingSummary(average=summary["average"], count=summary["total"]),
        top_review=None if top is None or not top["items"] else _review(top["items"][0]),
        degraded=view.degraded,
    )


def _review(review: Json) -> TopReview:
    return TopReview(
        author=review["author"], rating=review["rating"], title=review["title"], body=review["body"]
    )


def _by(batch: Json | None, key: str) -> dict[str, Json] | None:
    if batch is None:
        return None
    return {item[key]: item for item in batch["items"]}
