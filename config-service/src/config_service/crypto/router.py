"""``POST /encrypt``, ``POST /decrypt`` (text/plain both ways) and ``GET /encrypt/status``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from chassis import ServiceError
from config_service.crypto.service import CipherError
from config_service.dependencies import CipherDep, ClientDep

__all__ = ["router"]

router = APIRouter(tags=["encryption"])

MAX_BODY = 64 * 1024


async def _text(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ServiceError("the value is too large", status=413)
    try:
        return body.decode()
    except UnicodeDecodeError as exc:
        raise ServiceError("the body must be UTF-8 text", status=400) from exc


@router.get("/encrypt/status", summary="Whether values can be encrypted and decrypted")
async def status(cipher: CipherDep, _: ClientDep) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "OK"}
    if cipher.dev_key:
        body["warning"] = "development key in use (refused with ENV=production)"
    return body


@router.post("/encrypt", response_class=PlainTextResponse, summary="Encrypt a text/plain value")
async def encrypt(request: Request, cipher: CipherDep, _: ClientDep) -> str:
    return cipher.encrypt(await _text(request))


@router.post("/decrypt", response_class=PlainTextResponse, summary="Decrypt a value made by /encrypt")
async def decrypt(request: Request, cipher: CipherDep, _: ClientDep) -> str:
    try:
        return cipher.decrypt(await _text(request))
    except CipherError as exc:
        raise ServiceError(f"cannot decrypt: {exc}", status=400, title="Decryption failed") from exc
