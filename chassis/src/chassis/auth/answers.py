"""Reading auth-service's error answers (OAuth ``error``, problem+json ``detail``), for both of
its clients in the chassis (service identity and the gateways)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

__all__ = ["answer_field"]


def answer_field(response: httpx.Response, name: str) -> str | None:
    """``name`` of a JSON object answer as text (at most 200 characters), else None."""
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get(name) if isinstance(body, Mapping) else None
    return str(value)[:200] if value else None
