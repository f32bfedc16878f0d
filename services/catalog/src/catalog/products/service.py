"""Placeholder catalog (walking skeleton): a fixed list until the domain issue adds the store."""

from __future__ import annotations

from catalog.products.schemas import ProductPage, ProductPublic

__all__ = ["list_products"]

_PRODUCTS = [
    ProductPublic(
        id="p-1001",
        name="Trail Running Shoe",
        category="shoes",
        price_cents=12900,
        description="Grippy, light, made for mud.",
        image_url="/img/p-1001.jpg",
    ),
    ProductPublic(
        id="p-1002",
        name="Merino Base Layer",
        category="apparel",
        price_cents=7900,
        description="Warm when wet, never itchy.",
        image_url="/img/p-1002.jpg",
    ),
    ProductPublic(
        id="p-1003",
        name="Headlamp 400",
        category="gear",
        price_cents=4500,
        description="400 lumens, USB-C.",
        image_url="/img/p-1003.jpg",
    ),
]


def list_products(*, page: int, size: int) -> ProductPage:
    start = (page - 1) * size
    return ProductPage(items=_PRODUCTS[start : start + size], page=page, size=size, total=len(_PRODUCTS))
