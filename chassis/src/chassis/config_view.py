"""``GET /ops/config``: which configuration version a service runs, with secrets masked.

Operators only (``chassis.ops``: ``Authorization: Bearer <OPS_TOKEN>``): even masked, the view
names internal addresses, paths and client ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, Request

from chassis.config_client import ConfigSnapshot
from chassis.keys import flatten
from chassis.ops import OpsSettings, require_operator
from chassis.settings import ServiceSettings
from chassis.state import chassis_state

__all__ = ["MASK", "config_view_router", "mask_url_credentials", "masked"]

MASK = "******"
_SECRET_NAME = re.compile(
    r"pass(word|wd)?|secret|token|credential|private|api[_-]?key|encrypt|cipher|cookie", re.I
)
# scheme://userinfo@ anywhere in a value (also in lists such as "a=redis://:pw@h,b=..."): up to
# the last "@" before the next "/", as URL parsers read it. A password may hold "," or "@"; the
# next URL of a list starts with "//", so the match never reaches into it.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s]+)@")
# ?password=... / &api_key=... : a query parameter whose name says it is a secret
_QUERY_SECRET = re.compile(r"(?P<lead>[?&;](?P<name>[^=&#;\s,]+)=)(?P<value>[^&#;\s,]*)")
_MIN_KNOWN_SECRET = 4  # a shorter known secret would mask ordinary words


def mask_url_credentials(value: str) -> str:
    """Credentials inside URLs masked: the password of ``user:password@`` (a user alone may be a
    token, so all of it), and query parameters named like secrets."""

    def userinfo(match: re.Match[str]) -> str:
        user, colon, _ = match["userinfo"].partition(":")
        return f"{match['scheme']}{user}:{MASK}@" if colon else f"{match['scheme']}{MASK}@"

    def query(match: re.Match[str]) -> str:
        return f"{match['lead']}{MASK}" if _SECRET_NAME.search(match["name"]) else match[0]

    return _QUERY_SECRET.sub(query, _USERINFO.sub(userinfo, value))


def masked(flat: Mapping[str, Any], secrets: set[str]) -> dict[str, Any]:
    """Mask by key name, any value holding one of the service's known secrets, and credentials
    inside URLs (a name like ``redis_url`` says nothing of the password in its value)."""
    known = [secret for secret in secrets if len(secret) >= _MIN_KNOWN_SECRET]

    def shown(key: str, value: Any) -> Any:
        if _SECRET_NAME.search(key):
            return MASK
        if not isinstance(value, str):
            return value
        if value in secrets or any(secret in value for secret in known):
            return MASK
        return mask_url_credentials(value)

    return {key: shown(key, value) for key, value in sorted(flat.items())}


def _secrets_of(settings: ServiceSettings) -> set[str]:
    return {value for value in settings._secret_values().values() if value}


def config_view_router() -> APIRouter:
    # OPS_TOKEN is read here, when the app is built: ENV=production with the dev token stops the start.
    operator = require_operator(OpsSettings())
    router = APIRouter(prefix="/ops", tags=["ops"], dependencies=[Depends(operator)])

    @router.get(
        "/config", summary="Configuration version and effective settings, secrets masked (operator token)"
    )
    async def config(request: Request) -> dict[str, Any]:
        state = chassis_state(request.app)
        settings: ServiceSettings = state.live.current
        refresher = state.refresher
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
