"""Authentication and authorization, one module per audience:

- ``chassis.auth.verification``: resource services verify access tokens (``CurrentUser``,
  ``require_scope``);
- ``chassis.auth.identity``: a service calling others as itself (client credentials);
- ``chassis.auth.gateway_client``: the gateways' client of auth-service (login, refresh, logout,
  introspection with a cache kept honest by the revocation channel).

The names below are the public ones; import them from ``chassis.auth``.
"""

from chassis.auth.gateway_client import (
    REVOCATION_CHANNEL,
    AuthClientSettings,
    AuthServiceClient,
    InvalidCredentials,
    LoginsBusy,
    TokenSet,
    auth_client_lifespan,
    listen_for_revocations,
)
from chassis.auth.identity import (
    ServiceClientSettings,
    ServiceTokenAuth,
    ServiceTokenProvider,
    as_service,
    service_downstream,
    service_token_provider,
)
from chassis.auth.verification import (
    ALGORITHMS,
    JWKS_PATH,
    AuthSettings,
    BearerScheme,
    CurrentUser,
    Forbidden,
    JwtVerifier,
    Principal,
    Unauthorized,
    bearer_scheme,
    bearer_token,
    current_user,
    require_scope,
)

__all__ = [
    "ALGORITHMS",
    "JWKS_PATH",
    "REVOCATION_CHANNEL",
    "AuthClientSettings",
    "AuthServiceClient",
    "AuthSettings",
    "BearerScheme",
    "CurrentUser",
    "Forbidden",
    "InvalidCredentials",
    "JwtVerifier",
    "LoginsBusy",
    "Principal",
    "ServiceClientSettings",
    "ServiceTokenAuth",
    "ServiceTokenProvider",
    "TokenSet",
    "Unauthorized",
    "as_service",
    "auth_client_lifespan",
    "bearer_scheme",
    "bearer_token",
    "current_user",
    "listen_for_revocations",
    "require_scope",
    "service_downstream",
    "service_token_provider",
]
