"""``GET /ops/config``: which configuration version a service runs, with secrets masked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request

from chassis.config_client import ConfigSnapshot
from chassis.keys import flatten
from chassis.settings import ServiceSettings

__all__ = ["MASK", "config_view_router", "masked"]

MASK = "******"
_SECRET_NAME = re.compile(
    r"pass(word|wd)?|secret|token|credential|private|api[_-]?key|encrypt|cipher|cookie", re.I
)


def masked(flat: Mapping[str, Any], secrets: set[str]) -> dict[str, Any]:
    """Mask by key name, and any value equal to one of the service's known secrets."""
    return {
        key: MASK if _SECRET_NAME.search(key) or (isinstance(value, str) and value in secrets) else value
        for key, value in sorted(flat.items())
    }


def _secrets_of(settings: ServiceSettings) -> set[str]:
    return {value for value in settings._secret_values().values() if value}


def config_view_router() -> APIRouter:
    router = APIRouter(prefix="/ops", tags=["ops"])

    @router.get("/config", summary="Configuration version and effective settings (secrets masked)")
    async def config(request: Request) -> dict[str, Any]:
        settings: ServiceSettings = request.app.state.live.current
        refresher = getattr(request.app.state, "refresher", None)
        snapshot: ConfigSnapshot = (
            refresher.config.snapshot if refresher is not None else ConfigSnapshot(source="none", profile="")
        )
        secrets = _secrets_of(settings)
        return {
            "service": settings.service_name,
            "source": snapshot.source,
            "profile": snapshot.profile or None,
            "label": snapshot.label,
            "version": snapshot.version,
            "fetched_at": snapshot.fetched_at,
            "refreshes": refresher.refreshes if refresher is not None else 0,
            "property_sources": list(snapshot.property_sources),
            "settings": masked(flatten(settings.model_dump(mode="json")), secrets),
            # Names only: a repository key the settings do not model may hold a decrypted secret
            # under any name; modelled values are shown above, typed and masked.
            "remote_keys": sorted(snapshot.remote),
        }

    return router
