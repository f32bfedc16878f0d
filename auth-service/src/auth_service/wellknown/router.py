from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from auth_service.dependencies import KeyRingDep, SettingsDep

__all__ = ["router"]

router = APIRouter(prefix="/.well-known", tags=["discovery"])


@router.get(
    "/jwks.json", summary="Public signing keys: the active one and retired ones until their tokens expire"
)
async def jwks(keyring: KeyRingDep, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=60"
    return keyring.jwks()


@router.get("/openid-configuration", summary="Discovery document (issuer, endpoints, algorithms)")
async def openid_configuration(request: Request, settings: SettingsDep) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {
        "issuer": settings.auth.issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "token_endpoint": f"{base}/oauth/token",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "grant_types_supported": ["password", "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
        "scopes_supported": sorted({s for scopes in settings.role_scopes.values() for s in scopes}),
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "jti", "sid", "scope", "client_id", "role"],
    }
