"""The operator credential: what ``/ops/config`` asks for on every service.

Operator endpoints show internal addresses, client ids and paths, so they answer only to
``Authorization: Bearer <OPS_TOKEN>``; anything else is 401 problem+json. ``OPS_TOKEN`` comes from
the environment only (never the config repository, whose readers are not operators). The
development default carries the ``dev-only`` mark: ``ENV=production`` refuses to start with it, or
with a token shorter than ``MIN_PRODUCTION_LENGTH``. An empty ``OPS_TOKEN`` closes the endpoints.

``/ops/telemetry`` stays open: it holds counters and breaker states (``gateway-web->reviews``:
open), no configuration, address or identity, and the public answers already say as much
(``X-Degraded``, 503 naming the downstream); probes and the containers tests read it as they read
``/health``.

Tools and tests send ``operator_headers()`` (the token of their own environment).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Self

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chassis.errors import ServiceError
from chassis.settings import DEV_DEFAULT_MARK, Environment
from chassis.state import chassis_state

__all__ = ["DEV_OPS_TOKEN", "OperatorOnly", "OpsSettings", "operator_headers", "require_operator"]

DEV_OPS_TOKEN = f"{DEV_DEFAULT_MARK}-ops-token"
MIN_PRODUCTION_LENGTH = 16


class OpsSettings(BaseSettings):
    """Read from the environment once, when a service builds its app."""

    model_config = SettingsConfigDict(extra="ignore")

    env: Environment = "development"
    ops_token: SecretStr = Field(SecretStr(DEV_OPS_TOKEN), description="bearer token of /ops/config")

    @model_validator(mode="after")
    def _no_dev_token_in_production(self) -> Self:
        token = self.ops_token.get_secret_value()
        if self.env == "production" and (DEV_DEFAULT_MARK in token or 0 < len(token) < MIN_PRODUCTION_LENGTH):
            raise ValueError(
                f"ENV=production refuses the development OPS_TOKEN and tokens shorter than "
                f"{MIN_PRODUCTION_LENGTH} characters: set OPS_TOKEN in the environment"
            )
        return self


class OperatorOnly(ServiceError):
    status = 401
    title = "Unauthorized"

    def __init__(self) -> None:
        super().__init__(
            "Operator endpoints need the operator token: 'Authorization: Bearer <OPS_TOKEN>'.",
            headers={"WWW-Authenticate": 'Bearer realm="ops"'},
        )


_bearer = HTTPBearer(auto_error=False, scheme_name="operator", description="the operator token (OPS_TOKEN)")


def require_operator(settings: OpsSettings) -> Callable[..., Awaitable[Any]]:
    """A dependency (``APIRouter(dependencies=[Depends(require_operator(settings))])``) that admits
    only the bearer of ``settings.ops_token``."""
    expected = settings.ops_token.get_secret_value().encode()

    async def operator(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> None:
        # A service told it runs in production by its own settings never accepts the dev default,
        # even when the environment this was read from said otherwise.
        production = getattr(chassis_state(request.app).live.current, "env", None) == "production"
        usable = bool(expected) and not (production and DEV_DEFAULT_MARK.encode() in expected)
        sent = credentials.credentials.encode() if credentials is not None else b""
        if not (usable and sent and hmac.compare_digest(sent, expected)):
            raise OperatorOnly()

    return operator


def operator_headers(token: str | None = None) -> dict[str, str]:
    """``{"authorization": "Bearer <OPS_TOKEN>"}`` for a tool or test: the given token, else the
    ``OPS_TOKEN`` of this environment read as docker-compose.yml reads it (unset or empty: the
    development default), so it matches a stack started from the same shell."""
    value = token if token is not None else os.environ.get("OPS_TOKEN") or DEV_OPS_TOKEN
    return {"authorization": f"Bearer {value}"}
