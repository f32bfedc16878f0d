"""HTTP routes of inventory (called by orders and the gateways inside the compose network)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from chassis.chaos import inject_faults
from chassis.params import id_list, id_path
from inventory.dependencies import DatabaseDep, Reserver, StockAdmin
from inventory.stock import service
from inventory.stock.errors import UnknownSku
from inventory.stock.schemas import ReservationCreate, ReservationPublic, StockBatch, StockLevel, StockUpdate

__all__ = ["router"]

router = APIRouter(tags=["inventory"], dependencies=[Depends(inject_faults)])

OrderId = Annotated[str, id_path("order id")]
Sku = Annotated[str, id_path("SKU (a catalog product id)")]
MAX_BATCH = 100


@router.get("/stock", summary="Stock of several SKUs (unknown SKUs are listed in `missing`)")
async def get_stock(
    db: DatabaseDep,
    skus: Annotated[list[str], Query(min_length=1, description="repeat `skus=` or give one comma-separated")],
) -> StockBatch:
    return await service.get_stock(db=db, skus=id_list(skus, at_most=MAX_BATCH, what="SKUs"))


@router.get("/stock/{sku}", summary="Stock of one SKU", responses={404: {"description": "unknown SKU"}})
async def get_one(db: DatabaseDep, sku: Sku) -> StockLevel:
    batch = await service.get_stock(db=db, skus=[sku])
    if not batch.items:
        raise UnknownSku(f"Unknown SKU {sku!r}.")
    return batch.items[0]


@router.put(
    "/stock/{sku}",
    summary="Set the units on hand of a SKU, adding it if new (scope inventory:write)",
    responses={201: {"description": "a new SKU"}, 409: {"description": "fewer than the reserved units"}},
)
async def set_stock(
    db: DatabaseDep, _admin: StockAdmin, sku: Sku, update: StockUpdate, response: Response
) -> StockLevel:
    level, created = await service.set_stock(db=db, sku=sku, update=update)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return level


@router.post(
    "/reservations",
    status_code=status.HTTP_201_CREATED,
    summary="Reserve all lines or none; idempotent by order id (scope inventory:reserve: orders' service token)",
    description="201 when created; 200 with the same reservation when the order id was reserved with the "
    "same lines; 409 when stock is short, the lines differ, or the order's reservation was released.",
)
async def reserve(
    db: DatabaseDep, _caller: Reserver, body: ReservationCreate, response: Response
) -> ReservationPublic:
    reservation, created = await service.reserve(db=db, request=body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return reservation


@router.get("/reservations/{order_id}", summary="The reservation of an order")
async def get_reservation(db: DatabaseDep, order_id: OrderId) -> ReservationPublic:
    return await service.get_reservation(db=db, order_id=order_id)


@router.post(
    "/reservations/{order_id}/release",
    summary="Release an order's reservation; idempotent (scope inventory:reserve)",
    description="Releasing twice is harmless. Releasing an order id never reserved records it as released, "
    "so a late reserve for it is refused (409) and holds no stock.",
)
async def release(db: DatabaseDep, _caller: Reserver, order_id: OrderId) -> ReservationPublic:
    return await service.release(db=db, order_id=order_id)
