"""What reviews refuses, by name (each a problem+json status)."""

from __future__ import annotations

from chassis import ServiceError

__all__ = ["AlreadyReviewed"]


class AlreadyReviewed(ServiceError):
    status = 409
    title = "Conflict"
