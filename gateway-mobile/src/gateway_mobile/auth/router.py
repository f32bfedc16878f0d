from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from chassis.auth import Principal
from chassis.params import json_only
from gateway_mobile.auth import service
from gateway_mobile.auth.schemas import LogoutRequest, Me, RefreshRequest, TokenRequest, TokenResponse

__all__ = ["me_router", "router"]

router = APIRouter(prefix="/auth", tags=["auth"])
me_router = APIRouter(prefix="/m", tags=["auth"])


@router.post(
    "/token",
    summary="Log in: access + refresh token (relayed as client `mobile`)",
    dependencies=[Depends(json_only)],
    responses={401: {"description": "wrong username or password"}, 429: {"description": "a login limit"}},
)
async def token(request: Request, response: Response, body: TokenRequest) -> TokenResponse:
    response.headers["Cache-Control"] = "no-store"
    return await service.issue(request=request, body=body)


@router.post(
    "/refresh",
    summary="New token pair; the old refresh token is spent (reuse ends the session)",
    dependencies=[Depends(json_only)],
    responses={401: {"description": "the refresh token is unknown, spent or expired"}},
)
async def refresh(request: Request, response: Response, body: RefreshRequest) -> TokenResponse:
    response.headers["Cache-Control"] = "no-store"
    return await service.refresh(request=request, body=body)


@router.post(
    "/logout",
    status_code=204,
    summary="End the session of a refresh token (body) or bearer token",
)
async def logout(request: Request, body: LogoutRequest | None = None) -> None:
    await service.logout(request=request, body=body)


@me_router.get("/me", summary="The bearer's identity (proves the bearer -> introspection chain)")
async def me(user: Annotated[Principal, Depends(service.bearer_user)], response: Response) -> Me:
    response.headers["Cache-Control"] = "no-store"
    return service.me(user)
