"""Per-request context shared by logging, errors and the HTTP client (contextvars, so it follows tasks)."""

from __future__ import annotations

import contextvars

__all__ = ["request_id_var", "user_var"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
user_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("user", default=None)
