"""What orders refuses, by name (each a problem+json status)."""

from __future__ import annotations

from chassis import ServiceError

__all__ = [
    "IdempotencyKeyReused",
    "InventoryRefused",
    "MixedCurrencies",
    "OrderAbandoned",
    "OrderNotFound",
    "RequestInProgress",
    "UnknownProducts",
]


class OrderNotFound(ServiceError):
    status = 404
    title = "Order not found"


class IdempotencyKeyReused(ServiceError):
    status = 409
    title = "Idempotency key reused"


class RequestInProgress(ServiceError):
    status = 409
    title = "Request in progress"
    retry_after_s = 1


class UnknownProducts(ServiceError):
    status = 422
    title = "Unknown product"


class MixedCurrencies(ServiceError):
    status = 422
    title = "Mixed currencies"


class OrderAbandoned(ServiceError):
    status = 503
    title = "Service Unavailable"
    retry_after_s = 1


class InventoryRefused(ServiceError):
    """inventory said no: its status and problem relayed (409 short stock...), or 502 when its
    answer makes no sense for the call. No fixed title: the status's own phrase, or inventory's."""

    status = 502
