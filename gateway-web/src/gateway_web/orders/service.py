"""Web orders: placed and read through orders (the user's token relayed), shown with catalog pictures.

orders is required: it prices, reserves and stores (its 409/422/400 are relayed; when it or the
inventory behind it is unavailable, 503 with Retry-After). catalog is optional here: the order
lines carry the names as ordered; catalog adds the current picture, or the view is degraded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chassis import Downstream
from chassis.auth import Principal
from chassis.bff import IdempotentWrite, View, idempotent_write
from chassis.http import path_segment
from gateway_web.orders.schemas import OrderCreate, OrderLineView, OrderList, OrderView

__all__ = ["create_order", "get_order", "list_orders"]

Json = Mapping[str, Any]


async def create_order(
    *,
    orders: Downstream,
    catalog: Downstream,
    user: Principal,
    budget_s: float,
    order: OrderCreate,
    idempotency_key: str,
) -> tuple[OrderView, IdempotentWrite]:
    """The order with its pictures, and how orders answered (201 new, 200 replayed)."""
    written = await idempotent_write(
        orders, "/orders", json=order.model_dump(), key=idempotency_key, headers=user.auth_header()
    )
    async with View(budget_s) as view:
        thumbs = await _thumbs(view, catalog, [written.body])
    return _view(written.body, thumbs, view.degraded), written


async def list_orders(
    *, orders: Downstream, catalog: Downstream, user: Principal, budget_s: float, page: int, size: int
) -> OrderList:
    async with View(budget_s) as view:
        body: Json = await view.required(
            "orders",
            orders.get_json("/orders", params={"page": page, "size": size}, headers=user.auth_header()),
        )
        thumbs = await _thumbs(view, catalog, body["items"])
    return OrderList(
        items=[_view(item, thumbs, []) for item in body["items"]],
        page=body["page"],
        size=body["size"],
        total=body["total"],
        degraded=view.degraded,
    )


async def get_order(
    *, orders: Downstream, catalog: Downstream, user: Principal, budget_s: float, order_id: str
) -> OrderView:
    async with View(budget_s) as view:
        body: Json = await view.required(
            "orders", orders.get_json(f"/orders/{path_segment(order_id)}", headers=user.auth_header())
        )
        thumbs = await _thumbs(view, catalog, [body])
    return _view(body, thumbs, view.degraded)


async def _thumbs(view: View, catalog: Downstream, orders: Sequence[Json]) -> dict[str, str] | None:
    """Pictures of every product in these orders: one catalog batch call (optional part)."""
    ids = list(dict.fromkeys(line["product_id"] for order in orders for line in order["lines"]))
    if not ids:
        return {}
    batch: Json | None = await view.optional(
        "catalog",
        catalog.get_json(
            "/products/batch", params={"ids": ",".join(ids[:100])}, fallback=view.fallback("catalog")
        ),
    )
    if batch is None:
        return None
    return {product["id"]: product.get("thumb_url", "") for product in batch["items"]}


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency}"


def _view(order: Json, thumbs: dict[str, str] | None, degraded: list[str]) -> OrderView:
    currency = order["currency"]
    return OrderView(
        id=order["id"],
        status=order["status"],
        lines=[
            OrderLineView(
                product_id=line["product_id"],
                name=line["name"],
                quantity=line["quantity"],
                unit_price=_money(line["unit_price_cents"], currency),
                unit_price_cents=line["unit_price_cents"],
                line_total_cents=line["line_total_cents"],
                thumb_url=thumbs.get(line["product_id"]) if thumbs is not None else None,
            )
            for line in order["lines"]
        ],
        total=_money(order["total_cents"], currency),
        total_cents=order["total_cents"],
        currency=currency,
        created_at=order["created_at"],
        degraded=degraded,
    )
