from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from chassis.auth import Principal
from chassis.openapi import raw_body
from gateway_mobile.auth import service
from gateway_mobile.auth.schemas import LogoutRequest, Me, RefreshRequest, TokenRequest, TokenResponse

__all__ = ["me_router", "router"]

router = APIRouter(prefix="/auth", tags=["auth"])
me_router = APIRouter(prefix="/m", tags=["auth"])


def _json_body(model: Any, required: bool = True) -> dict[str, Any]:
    # the routes read their bodies themselves (size limit first, then the model)
    return raw_body({"application/json": model.model_json_schema()}, required=required)


@router.post(
    "/token",
    summary="Log in: access + refresh token (relayed as client `mobile`)",
    openapi_extra=_json_body(TokenRequest),
    responses={401: {"description": "wrong username or password"}, 429: {"description": "a login limit"}},
)
async def token(request: Request, response: Response) -> TokenResponse:
    response.headers["Cache-Control"] = "no-store"
    return await service.issue(request=request)


@router.post(
    "/refresh",
    summary="New token pair; the old refresh token is spent (reuse ends the session)",
    openapi_extra=_json_body(RefreshRequest),
    responses={401: {"description": "the refresh token is unknown, spent or expired"}},
)
async def refresh(request: Request, response: Response) -> TokenResponse:
    response.headers["Cache-Control"] = "no-store"
    return await service.refresh(request=request)


@router.post(
    "/logout",
    status_code=204,
    summary="End the session of a refresh token (body) or bearer token",
    openapi_extra=_json_body(LogoutRequest, required=False),
)
async def logout(request: Request) -> None:
    await service.logout(request=request)


@me_router.get("/me", summary="The bearer's identity (proves the bearer -> introspection chain)")
async def me(user: Annotated[Principal, Depends(service.bearer_user)], response: Response) -> Me:
    response.headers["Cache-Control"] = "no-store"
    return service.me(user)
