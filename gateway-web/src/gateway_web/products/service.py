"""Web product views: catalog data joined with stock (inventory) and ratings (reviews).

catalog is required (no product, no page: 503 or its 404); stock and reviews are optional (lost ->
``null`` and named in ``degraded``). Parts that do not depend on each other run concurrently, and
the whole answer keeps to ``bff.budget_s`` (see ``chassis.bff.View``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chassis import Downstream
from chassis.auth import Principal
from chassis.bff import View
from chassis.http import path_segment
from gateway_web.products.schemas import (
    ProductCard,
    ProductListing,
    ProductPage,
    Rating,
    ReviewCreate,
    ReviewPublic,
    Stock,
)

__all__ = ["create_review", "get_product", "list_products"]

LATEST_REVIEWS = 5
Json = Mapping[str, Any]


async def list_products(
    *,
    catalog: Downstream,
    inventory: Downstream,
    reviews: Downstream,
    budget_s: float,
    page: int,
    size: int,
    q: str | None,
    category: str | None,
) -> ProductListing:
    params: dict[str, Any] = {"page": page, "size": size}
    if q:
        params["q"] = q
    if category:
        params["category"] = category
    async with View(budget_s) as view:
        body: Json = await view.required("catalog", catalog.get_json("/products", params=params))
        ids = ",".join(product["id"] for product in body["items"])
        stock: Json | None = None
        ratings: Json | None = None
        if ids:
            # Both batches need only the ids of the page: one round trip each, side by side.
            stock_call = view.start(
                inventory.get_json("/stock", params={"skus": ids}, fallback=view.fallback("inventory"))
            )
            ratings_call = view.start(
                reviews.get_json("/summaries", params={"product_ids": ids}, fallback=view.fallback("reviews"))
            )
            stock = await view.optional("inventory", stock_call)
            ratings = await view.optional("reviews", ratings_call)
    levels = _by(stock, "sku")
    summaries = _by(ratings, "product_id")
    return ProductListing(
        items=[_card(p, levels, summaries) for p in body["items"]],
        page=body["page"],
        size=body["size"],
        total=body["total"],
        degraded=view.degraded,
    )


async def get_product(
    *, catalog: Downstream, inventory: Downstream, reviews: Downstream, budget_s: float, product_id: str
) -> ProductPage:
    async with View(budget_s) as view:
        # All three at once: none needs another's answer. reviews' page of a product carries its
        # rating summary, so one call gives both the rating and the latest reviews.
        product_call = view.start(catalog.get_json(f"/products/{path_segment(product_id)}"))
        stock_call = view.start(
            inventory.get_json("/stock", params={"skus": product_id}, fallback=view.fallback("inventory"))
        )
        latest_call = view.start(
            reviews.get_json(
                f"/products/{path_segment(product_id)}/reviews",
                params={"size": LATEST_REVIEWS},
                fallback=view.fallback("reviews"),
            )
        )
        product: Json = await view.required("catalog", product_call)
        stock = await view.optional("inventory", stock_call)
        latest = await view.optional("reviews", latest_call)
    card = _card(product, _by(stock, "sku"), _summary(product_id, latest))
    reviews_shown = None
    if latest is not None:
        reviews_shown = [ReviewPublic.model_validate(item) for item in latest["items"]]
    return ProductPage(**card.model_dump(), latest_reviews=reviews_shown, degraded=view.degraded)


async def create_review(
    *, catalog: Downstream, reviews: Downstream, user: Principal, product_id: str, review: ReviewCreate
) -> ReviewPublic:
    # reviews does not know the catalog: the gateway checks the product exists (404 relayed).
    await catalog.get_json(f"/products/{path_segment(product_id)}")
    body: Json = await reviews.json(
        "POST",
        f"/products/{path_segment(product_id)}/reviews",
        json=review.model_dump(),
        headers=user.auth_header(),
    )
    return ReviewPublic.model_validate(body)


def _by(batch: Json | None, key: str) -> dict[str, Json] | None:
    """A batch answer indexed by id; ``None`` (unknown) when the part was lost."""
    if batch is None:
        return None
    return {item[key]: item for item in batch["items"]}


def _summary(product_id: str, page: Json | None) -> dict[str, Json] | None:
    """A product's rating summary from reviews' page of it, shaped as ``/summaries`` answers; None
    (unknown) when the page was lost, or comes from a reviews older than the summary on its pages
    (a rolling upgrade: the rating is shown again once reviews is upgraded)."""
    if page is None or "average" not in page:
        return None
    return {product_id: {"average": page["average"], "count": page["total"]}}


def _card(product: Json, levels: dict[str, Json] | None, summaries: dict[str, Json] | None) -> ProductCard:
    level = levels.get(product["id"]) if levels is not None else None
    summary = summaries.get(product["id"]) if summaries is not None else None
    return ProductCard(
        id=product["id"],
        name=product["name"],
        brand=product.get("brand", ""),
        category=product["category"],
        description=product.get("description", ""),
        price=f"{product['price_cents'] / 100:.2f} {product['currency']}",
        price_cents=product["price_cents"],
        currency=product["currency"],
        image_url=product.get("image_url", ""),
        thumb_url=product.get("thumb_url", ""),
        stock=Stock(available=level["available"], in_stock=level["in_stock"]) if level else None,
        rating=Rating(average=summary["average"], count=summary["count"]) if summary else None,
    )
