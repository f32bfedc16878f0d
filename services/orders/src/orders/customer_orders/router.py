"""HTTP routes of orders: thin, the service module holds the logic."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from chassis.chaos import inject_faults
from chassis.params import IdempotencyKey, id_path
from orders.customer_orders import service
from orders.customer_orders.schemas import OrderCreate, OrderPage, OrderPublic
from orders.dependencies import CatalogDep, DatabaseDep, InventoryDep, OrderReader, OrderWriter, SettingsDep

__all__ = ["router"]

router = APIRouter(prefix="/orders", tags=["orders"], dependencies=[Depends(inject_faults)])

OrderId = Annotated[str, id_path("order id")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Place an order (scope orders:write); idempotent by the Idempotency-Key header",
    description="201 with the new order. The same key with the same body answers 200 with the same order "
    "(header `Idempotent-Replayed: true`); with another body 409. Prices come from catalog; stock is "
    "reserved in inventory (409 when short). Catalog or inventory unavailable: 503 with Retry-After.",
)
async def create_order(
    db: DatabaseDep,
    catalog: CatalogDep,
    inventory: InventoryDep,
    user: OrderWriter,
    order: OrderCreate,
    response: Response,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey,
) -> OrderPublic:
    placed, created = await service.create_order(
        db=db,
        catalog=catalog,
        inventory=inventory,
        user=user.sub,
        key=idempotency_key,
        order=order,
        key_ttl_s=settings.idempotency_ttl_s,
    )
    response.headers["Location"] = f"/orders/{placed.id}"
    if not created:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return placed


@router.get("", summary="The caller's orders, newest first (scope orders:read)")
async def list_orders(
    db: DatabaseDep,
    user: OrderReader,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> OrderPage:
    return await service.list_orders(db=db, user=user.sub, page=page, size=size)


@router.get("/{order_id}", summary="One of the caller's orders (scope orders:read); others' are 404")
async def get_order(db: DatabaseDep, user: OrderReader, order_id: OrderId) -> OrderPublic:
    return await service.get_order(db=db, user=user.sub, order_id=order_id)
