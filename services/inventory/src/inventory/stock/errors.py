"""What inventory refuses, by name (each a problem+json status)."""

from __future__ import annotations

from chassis import ServiceError

__all__ = [
    "InsufficientStock",
    "ReservationConflict",
    "ReservationNotFound",
    "StockBelowReserved",
    "UnknownSku",
]


class UnknownSku(ServiceError):
    """Answered 404 for one SKU, 422 for SKUs inside a reservation (a bad request body)."""

    status = 404
    title = "Unknown SKU"


class InsufficientStock(ServiceError):
    status = 409
    title = "Insufficient stock"


class ReservationConflict(ServiceError):
    status = 409
    title = "Conflict"


class ReservationNotFound(ServiceError):
    status = 404
    title = "Reservation not found"


class StockBelowReserved(ServiceError):
    status = 409
    title = "Conflict"
