from __future__ import annotations

from fastapi import APIRouter, Request, Response

from auth_service.dependencies import KeyRingDep, SessionStoreDep, SettingsDep
from auth_service.oauth import service
from auth_service.oauth.forms import authenticate_client, read_form
from auth_service.oauth.schemas import IntrospectionResponse, TokenResponse

__all__ = ["router"]

router = APIRouter(prefix="/oauth", tags=["oauth"])

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_FORM_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}
            }
        },
    }
}


def _client_ip(request: Request) -> str:
    # Only authenticated clients (the gateways) reach the grants; they report the end user's
    # address as the last X-Forwarded-For hop. Without it, the peer address counts.
    forwarded = request.headers.get("x-forwarded-for", "")
    last = forwarded.split(",")[-1].strip()
    if last and len(last) <= 64:
        return last
    return request.client.host if request.client else "unknown"


@router.post(
    "/token",
    summary="Password, refresh-token and client-credentials grants (client authenticated by Basic "
    "auth or form)",
    openapi_extra=_FORM_BODY,
    response_model_exclude_none=True,  # client_credentials: no refresh_token
)
async def token(
    request: Request, response: Response, settings: SettingsDep, store: SessionStoreDep, keyring: KeyRingDep
) -> TokenResponse:
    form = await read_form(request, limit=settings.max_body_bytes)
    client_id = authenticate_client(request, form, settings.client_secrets())
    response.headers.update(_NO_STORE)
    return await service.grant(
        settings=settings,
        store=store,
        keyring=keyring,
        client_id=client_id,
        form=form,
        ip=_client_ip(request),
    )


@router.post(
    "/introspect",
    summary="RFC 7662 introspection; `required_scope` also answers the authorization question",
    openapi_extra=_FORM_BODY,
    response_model_exclude_none=True,
)
async def introspect(
    request: Request, response: Response, settings: SettingsDep, store: SessionStoreDep, keyring: KeyRingDep
) -> IntrospectionResponse:
    form = await read_form(request, limit=settings.max_body_bytes)
    client_id = authenticate_client(request, form, settings.client_secrets())
    response.headers.update(_NO_STORE)
    return await service.introspect(
        settings=settings, store=store, keyring=keyring, client_id=client_id, form=form
    )


@router.post(
    "/revoke", summary="RFC 7009 revocation: the token's whole session ends now", openapi_extra=_FORM_BODY
)
async def revoke(
    request: Request, settings: SettingsDep, store: SessionStoreDep, keyring: KeyRingDep
) -> Response:
    form = await read_form(request, limit=settings.max_body_bytes)
    client_id = authenticate_client(request, form, settings.client_secrets())
    await service.revoke(settings=settings, store=store, keyring=keyring, client_id=client_id, form=form)
    return Response(status_code=200, headers=_NO_STORE)
