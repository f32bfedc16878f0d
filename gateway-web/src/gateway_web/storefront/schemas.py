"""What the storefront page reads at start: the few settings a browser needs (no inline script)."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["StorefrontConfig"]


class StorefrontConfig(BaseModel):
    zipkin_ui_url: str = Field(
        description="the footer links the last request's trace to <this>/zipkin/traces/<id>"
    )
    csrf_header: str = Field(description="the header every write sends the session's CSRF token in")
    csrf_cookie: str = Field(description="the readable cookie holding that token (a new tab reads it there)")
