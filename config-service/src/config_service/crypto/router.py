"""``POST /encrypt``, ``POST /decrypt`` (text/plain both ways) and ``GET /encrypt/status``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from chassis.limits import read_limited_body
from chassis.openapi import raw_body
from config_service.crypto.service import CipherError
from config_service.dependencies import CipherDep, ClientDep
from config_service.errors import DecryptionFailed, NotUtf8Text

__all__ = ["router"]

router = APIRouter(tags=["encryption"])

MAX_BODY = 64 * 1024


async def _text(request: Request) -> str:
    body = await read_limited_body(request, limit=MAX_BODY)  # 413 while reading, not after
    try:
        return body.decode()
    except UnicodeDecodeError as exc:
        raise NotUtf8Text("the body must be UTF-8 text") from exc


@router.get("/encrypt/status", summary="Whether values can be encrypted and decrypted")
async def status(cipher: CipherDep, _: ClientDep) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "OK"}
    if cipher.dev_key:
        body["warning"] = "development key in use (refused with ENV=production)"
    return body


_TEXT = raw_body({"text/plain": {"type": "string"}}, one_type=False)


@router.post(
    "/encrypt",
    response_class=PlainTextResponse,
    summary="Encrypt a text/plain value",
    openapi_extra=_TEXT,
    responses={400: {"description": "not UTF-8 text"}},
)
async def encrypt(request: Request, cipher: CipherDep, _: ClientDep) -> str:
    return cipher.encrypt(await _text(request))


@router.post(
    "/decrypt",
    response_class=PlainTextResponse,
    summary="Decrypt a value made by /encrypt",
    openapi_extra=_TEXT,
    responses={400: {"description": "not UTF-8 text, or not a value this key made"}},
)
async def decrypt(request: Request, cipher: CipherDep, _: ClientDep) -> str:
    try:
        return cipher.decrypt(await _text(request))
    except CipherError as exc:
        raise DecryptionFailed(f"cannot decrypt: {exc}") from exc
