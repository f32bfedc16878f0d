"""Request parameters checked one way at the edge (gateways) and behind it (domain services).

- ``ID_PATTERN`` / ``id_path``: a resource id in a URL path (a product, an order). It starts with
  a letter or digit, so ``.`` and ``..`` are never ids; downstream URLs still put ids in with
  ``chassis.http.path_segment``, so no value can rewrite the path of a call.
- ``IdempotencyKey``: the required ``Idempotency-Key`` header of a write (missing: 422 like any
  required parameter), 1-255 visible ASCII characters, else 400 problem+json. A gateway checks it before relaying it, by the rule orders applies:
  the gateway's HTTP client cannot send a header value it cannot encode (that was a 500).

Use::

    OrderId = Annotated[str, id_path("order id")]

    @router.post("/orders")
    async def create_order(key: IdempotencyKey, ...) -> ...
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request

from chassis.errors import ServiceError
from chassis.openapi import problems

__all__ = [
    "ID_PATTERN",
    "IdempotencyKey",
    "InvalidIdempotencyKey",
    "NotJson",
    "TooManyIds",
    "id_list",
    "id_path",
    "idempotency_key",
    "json_only",
]

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def id_path(description: str) -> Any:
    """``Path(...)`` of an id: 422 problem+json unless it matches ``ID_PATTERN``."""
    return Path(pattern=ID_PATTERN, description=description)


class NotJson(ServiceError):
    status = 415
    title = "Unsupported Media Type"


@problems(415)
async def json_only(request: Request) -> None:
    """``dependencies=[Depends(json_only)]``: a JSON body or 415. FastAPI would parse a body sent
    with no Content-Type (or text/plain) as JSON, which is what a cross-site form may send without
    a CORS preflight; credentials routes (login, token) take only what a script must declare."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise NotJson("Send the body as application/json.")


class TooManyIds(ServiceError):
    status = 422
    title = "Too many ids"


def id_list(values: list[str], *, at_most: int, what: str = "ids") -> list[str]:
    """The ids of a batch query (``ids=a&ids=b`` or ``ids=a,b``), blanks dropped; more than
    ``at_most``: 422. An empty list is a valid, empty batch (an empty page asks for nothing)."""
    ids = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if len(ids) > at_most:
        raise TooManyIds(f"Give at most {at_most} {what}.")
    return ids


class InvalidIdempotencyKey(ServiceError):
    status = 400
    title = "Invalid Idempotency-Key"


@problems(400)
def idempotency_key(
    key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            description="1-255 visible ASCII characters; the same key and body again give the same order",
        ),
    ],
) -> str:
    # Header values arrive decoded as latin-1, so UTF-8 bytes show up as characters above 0x7e.
    if not _KEY.fullmatch(key):
        raise InvalidIdempotencyKey("The Idempotency-Key header must be 1-255 visible ASCII characters.")
    return key


IdempotencyKey = Annotated[str, Depends(idempotency_key)]
