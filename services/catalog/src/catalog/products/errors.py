"""What catalog refuses, by name (each a problem+json status)."""

from __future__ import annotations

from chassis import ServiceError

__all__ = ["InvalidUpdate", "ProductExists", "ProductNotFound"]


class ProductNotFound(ServiceError):
    status = 404
    title = "Product not found"


class ProductExists(ServiceError):
    status = 409
    title = "Conflict"


class InvalidUpdate(ServiceError):
    status = 422
    title = "Invalid update"
