"""Reading the ``application/x-www-form-urlencoded`` bodies of the OAuth endpoints (size-limited)."""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import parse_qsl, unquote

from fastapi import Request

from auth_service.oauth.errors import InvalidClient, InvalidRequest
from chassis.limits import read_limited_body

__all__ = ["authenticate_client", "read_form"]

FORM = "application/x-www-form-urlencoded"


async def read_form(request: Request, *, limit: int) -> dict[str, str]:
    raw = await read_limited_body(request, limit=limit, content_type=FORM)
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("The form body is malformed.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:  # RFC 6749 3.1: parameters must not repeat
            raise InvalidRequest(f"The parameter {name!r} is repeated.")
        form[name] = value
    return form


def authenticate_client(request: Request, form: dict[str, str], secrets: dict[str, str]) -> str:
    """The client id, authenticated by HTTP Basic (preferred) or ``client_id``/``client_secret``."""
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidClient() from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise InvalidClient()
        client_id, secret = unquote(client_id), unquote(secret)  # RFC 6749 2.3.1 form-encodes both
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    expected = secrets.get(client_id)
    # compare even for an unknown client so timing does not tell which ids exist
    ok = hmac.compare_digest(secret.encode(), (expected or "\0unknown").encode())
    if expected is None or not ok:
        raise InvalidClient()
    return client_id
