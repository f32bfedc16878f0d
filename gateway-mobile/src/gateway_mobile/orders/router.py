"""Mobile order routes (bearer token; relayed to orders)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from chassis.params import IdempotencyKey, id_path
from gateway_mobile.dependencies import BearerUser, OrdersDep, SettingsDep
from gateway_mobile.orders import service
from gateway_mobile.orders.schemas import OrderCompact, OrderCreate, OrderFeed

__all__ = ["router"]

router = APIRouter(prefix="/m/orders", tags=["orders"])

OrderId = Annotated[str, id_path("order id")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Place an order; idempotent by the Idempotency-Key header (relayed to orders)",
    responses={
        200: {"description": "the same key and body again: the same order (`Idempotent-Replayed: true`)"},
        400: {"description": "an Idempotency-Key that is not 1-255 visible ASCII characters"},
        409: {"description": "short stock, or the key reused with another body"},
        503: {"description": "orders or inventory unavailable (Retry-After); nothing is held"},
    },
)
async def create_order(
    orders: OrdersDep,
    user: BearerUser,
    order: OrderCreate,
    response: Response,
    idempotency_key: IdempotencyKey,
) -> OrderCompact:
    placed, written = await service.create_order(
        orders=orders, user=user, order=order, idempotency_key=idempotency_key
    )
    written.answer(response, location=f"/m/orders/{placed.id}")
    return placed


@router.get(
    "",
    summary="The user's orders, newest first, with cursor pagination",
    responses={400: {"description": "bad cursor"}},
)
async def list_orders(
    orders: OrdersDep,
    user: BearerUser,
    settings: SettingsDep,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT)] = 20,
) -> OrderFeed:
    return await service.list_orders(
        orders=orders, user=user, budget_s=settings.bff.budget_s, cursor=cursor, limit=limit
    )


@router.get("/{order_id}", summary="One of the user's orders (others' are 404)")
async def get_order(
    orders: OrdersDep,
    user: BearerUser,
    settings: SettingsDep,
    order_id: OrderId,
) -> OrderCompact:
    return await service.get_order(
        orders=orders, user=user, budget_s=settings.bff.budget_s, order_id=order_id
    )
