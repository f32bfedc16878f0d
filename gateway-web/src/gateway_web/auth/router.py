from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from chassis.auth import Principal
from chassis.params import json_only
from gateway_web.auth import service
from gateway_web.auth.schemas import LoginRequest, LoginResponse, Me

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/login",
    summary="Log in: sets the HttpOnly session cookie and returns the CSRF token",
    dependencies=[Depends(json_only)],  # a cross-site form cannot log a browser in
    responses={401: {"description": "wrong username or password"}, 429: {"description": "a login limit"}},
)
async def login(request: Request, response: Response, credentials: LoginRequest) -> LoginResponse:
    response.headers["Cache-Control"] = "no-store"
    return await service.login(request=request, response=response, credentials=credentials)


@router.post("/logout", status_code=204, summary="End the session (needs the X-CSRF-Token header)")
async def logout(request: Request, response: Response) -> None:
    await service.logout(request=request, response=response)


@router.get("/me", summary="The logged-in user (proves the session -> refresh -> introspection chain)")
async def me(user: Annotated[Principal, Depends(service.session_user)], response: Response) -> Me:
    response.headers["Cache-Control"] = "no-store"
    return service.me(user)
