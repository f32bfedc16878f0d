"""Web order routes: the logged-in user's orders (session cookie; X-CSRF-Token on POST)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from chassis.bff import mark_degraded
from chassis.params import IdempotencyKey, id_path
from gateway_web.dependencies import CatalogDep, OrdersDep, SessionUser, SessionWriter, SettingsDep
from gateway_web.orders import service
from gateway_web.orders.schemas import OrderCreate, OrderList, OrderView

__all__ = ["router"]

router = APIRouter(prefix="/api/orders", tags=["orders"])

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
    catalog: CatalogDep,
    user: SessionWriter,
    settings: SettingsDep,
    order: OrderCreate,
    response: Response,
    idempotency_key: IdempotencyKey,
) -> OrderView:
    placed, written = await service.create_order(
        orders=orders,
        catalog=catalog,
        user=user,
        budget_s=settings.bff.budget_s,
        order=order,
        idempotency_key=idempotency_key,
    )
    written.answer(response, location=f"/api/orders/{placed.id}")
    mark_degraded(response, placed.degraded)
    return placed


@router.get("", summary="The user's orders, newest first, with product names and pictures")
async def list_orders(
    orders: OrdersDep,
    catalog: CatalogDep,
    user: SessionUser,
    settings: SettingsDep,
    response: Response,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> OrderList:
    listing = await service.list_orders(
        orders=orders, catalog=catalog, user=user, budget_s=settings.bff.budget_s, page=page, size=size
    )
    mark_degraded(response, listing.degraded)
    return listing


@router.get("/{order_id}", summary="One of the user's orders (others' are 404)")
async def get_order(
    orders: OrdersDep,
    catalog: CatalogDep,
    user: SessionUser,
    settings: SettingsDep,
    response: Response,
    order_id: OrderId,
) -> OrderView:
    order = await service.get_order(
        orders=orders, catalog=catalog, user=user, budget_s=settings.bff.budget_s, order_id=order_id
    )
    mark_degraded(response, order.degraded)
    return order
