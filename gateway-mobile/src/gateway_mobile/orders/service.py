"""Mobile orders: placed and read through orders with the bearer's token relayed; compact answers.

orders is the only part (the lines carry the product names as ordered), so there is nothing to
degrade: when orders, or the inventory it reserves in, is unavailable the answer is 503 with
Retry-After, and its 400/409/422 are relayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chassis import Downstream
from chassis.auth import Principal
from chassis.bff import IdempotentWrite, View, idempotent_write
from chassis.http import path_segment
from gateway_mobile.orders.schemas import OrderCompact, OrderCreate, OrderFeed, OrderItem
from gateway_mobile.pagination import BadCursor, cursor_for, window

__all__ = ["MAX_LIMIT", "create_order", "get_order", "list_orders"]

MAX_LIMIT = 50
MAX_PAGE = 10_000
Json = Mapping[str, Any]


async def create_order(
    *, orders: Downstream, user: Principal, order: OrderCreate, idempotency_key: str
) -> tuple[OrderCompact, IdempotentWrite]:
    """The order, and how orders answered (201 new, 200 replayed)."""
    written = await idempotent_write(
        orders, "/orders", json=order.model_dump(), key=idempotency_key, headers=user.auth_header()
    )
    return _compact(written.body), written


async def list_orders(
    *, orders: Downstream, user: Principal, budget_s: float, cursor: str | None, limit: int
) -> OrderFeed:
    current = window(cursor, limit, MAX_LIMIT)
    # orders pages by number: the cursor carries the next page (newest first, so a new order
    # may repeat one row at a page edge; the app deduplicates by id).
    page = _page(current.after)
    async with View(budget_s) as view:
        body: Json = await view.required(
            "orders",
            orders.get_json(
                "/orders", params={"page": page, "size": current.size}, headers=user.auth_header()
            ),
        )
    more = page * current.size < body["total"] and page < MAX_PAGE
    return OrderFeed(
        items=[_compact(item) for item in body["items"]],
        next_cursor=cursor_for(str(page + 1) if more else None, current.size),
    )


def _page(after: str | None) -> int:
    if after is None:
        return 1
    if not after.isdigit() or not 1 <= int(after) <= MAX_PAGE:
        raise BadCursor()
    return int(after)


async def get_order(*, orders: Downstream, user: Principal, budget_s: float, order_id: str) -> OrderCompact:
    async with View(budget_s) as view:
        body: Json = await view.required(
            "orders", orders.get_json(f"/orders/{path_segment(order_id)}", headers=user.auth_header())
        )
    return _compact(body)


def _compact(order: Json) -> OrderCompact:
    return OrderCompact(
        id=order["id"],
        status=order["status"],
        total=order["total_cents"],
        currency=order["currency"],
        created_at=order["created_at"],
        items=[
            OrderItem(product_id=line["product_id"], name=line["name"], quantity=line["quantity"])
            for line in order["lines"]
        ],
    )
