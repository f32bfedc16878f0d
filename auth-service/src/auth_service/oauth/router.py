from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request, Response, Security
from fastapi.security import HTTPBasic

from auth_service.dependencies import KeyRingDep, PasswordCheckerDep, SessionStoreDep, SettingsDep
from auth_service.oauth import service
from auth_service.oauth.forms import authenticate_client, read_form
from auth_service.oauth.schemas import IntrospectionResponse, TokenResponse
from auth_service.settings import Settings
from chassis.openapi import DocumentedScheme, raw_body

__all__ = ["router"]

# Every grant authenticates its OAuth client, by Basic auth (documented) or client_id/client_secret
# in the form (``authenticate_client`` reads both, answering OAuth errors; the scheme only documents).
router = APIRouter(
    prefix="/oauth",
    tags=["oauth"],
    dependencies=[
        Security(DocumentedScheme(HTTPBasic(scheme_name="client", description="OAuth client id and secret")))
    ],
    responses={400: {"description": "an OAuth error (`error`: invalid_request, invalid_grant...)"}},
)

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# read by forms.read_form: size limit first, then the form
_FORM_BODY = raw_body(
    {"application/x-www-form-urlencoded": {"type": "object", "additionalProperties": {"type": "string"}}}
)


def _client_ip(request: Request, client_id: str, settings: Settings) -> str:
    """The end user's address the login limits count against: the peer, unless the request was
    authenticated as a gateway client (``settings.forwarding_clients``), which reports its own
    caller's address as the last X-Forwarded-For hop. Nobody else can name an address (the
    server itself trusts no forwarded header unless TRUSTED_PROXIES says so)."""
    peer = request.client.host if request.client else "unknown"
    if client_id not in settings.forwarding_clients:
        return peer
    last = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(last))  # also keeps arbitrary text out of keys and logs
    except ValueError:
        return peer


@router.post(
    "/token",
    summary="Password, refresh-token and client-credentials grants (client authenticated by Basic "
    "auth or form)",
    openapi_extra=_FORM_BODY,
    response_model_exclude_none=True,  # client_credentials: no refresh_token
    responses={429: {"description": "a login limit (per user+address, per address, global)"}},
)
async def token(
    request: Request,
    response: Response,
    settings: SettingsDep,
    store: SessionStoreDep,
    keyring: KeyRingDep,
    checker: PasswordCheckerDep,
) -> TokenResponse:
    form = await read_form(request, limit=settings.max_body_bytes)
    client_id = authenticate_client(request, form, settings.client_secrets())
    response.headers.update(_NO_STORE)
    return await service.grant(
        settings=settings,
        store=store,
        keyring=keyring,
        checker=checker,
        client_id=client_id,
        form=form,
        ip=_client_ip(request, client_id, settings),
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
