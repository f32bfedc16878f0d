"""HTTP routes of the catalog: thin, the service module holds the logic."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from catalog.dependencies import CatalogWriter, DatabaseDep
from catalog.products import service
from catalog.products.schemas import ProductBatch, ProductCreate, ProductPage, ProductPublic, ProductUpdate
from chassis.chaos import inject_faults
from chassis.params import id_list, id_path

__all__ = ["router"]

router = APIRouter(prefix="/products", tags=["products"], dependencies=[Depends(inject_faults)])

ProductId = Annotated[str, id_path("product id (also its SKU)")]
MAX_BATCH = 100


@router.get("", summary="List products, paged; search by text and category")
async def list_products(
    db: DatabaseDep,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 20,
    q: Annotated[str | None, Query(max_length=100, description="text in name, brand or description")] = None,
    category: Annotated[str | None, Query(max_length=50)] = None,
    after: Annotated[
        str | None,
        Query(max_length=64, description="start after this product id (keyset paging; ignores page)"),
    ] = None,
) -> ProductPage:
    return await service.list_products(db=db, page=page, size=size, q=q, category=category, after=after)


@router.get("/batch", summary="Several products by id (unknown ids are listed in `missing`)")
async def get_products(
    db: DatabaseDep,
    ids: Annotated[
        list[str],
        Query(min_length=1, max_length=MAX_BATCH, description="repeat `ids=` or give one comma-separated"),
    ],
) -> ProductBatch:
    return await service.get_products(db=db, ids=id_list(ids, at_most=MAX_BATCH))


@router.get("/{product_id}", summary="One product", responses={404: {"description": "unknown id"}})
async def get_product(db: DatabaseDep, product_id: ProductId) -> ProductPublic:
    return await service.get_product(db=db, product_id=product_id)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a product (scope catalog:write)",
    responses={409: {"description": "a product with this id exists"}},
)
async def create_product(
    db: DatabaseDep, _writer: CatalogWriter, product: ProductCreate, response: Response
) -> ProductPublic:
    created = await service.create_product(db=db, product=product)
    response.headers["Location"] = f"/products/{created.id}"
    return created


@router.patch(
    "/{product_id}",
    summary="Change some fields of a product (scope catalog:write)",
    responses={404: {"description": "unknown id"}},
)
async def update_product(
    db: DatabaseDep, _writer: CatalogWriter, product_id: ProductId, changes: ProductUpdate
) -> ProductPublic:
    return await service.update_product(db=db, product_id=product_id, changes=changes)
