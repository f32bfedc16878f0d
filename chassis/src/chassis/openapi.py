"""An OpenAPI document honest enough to fuzz: every operation lists the problem+json answers it
can give, derived in one place from what the operation is made of, not written per route.

- every operation: 503 (a dependency is down, a circuit is open, the process sheds load);
- parameters or a body: 422 (FastAPI's own 422 schema is replaced: our handler answers
  problem+json, ``chassis.errors``);
- a body: 400 (not parseable as its media type: FastAPI's own answer) and 413 (over the limit);
- a path parameter: 404;
- a security requirement (bearer token, session cookie + CSRF header, basic, operator token):
  401 and 403. Security schemes come from FastAPI's security classes on the dependencies
  (``chassis.auth.BearerScheme``...); FastAPI lists each as an alternative, but here every scheme
  an operation uses is needed at once (a session cookie *and* its CSRF header), so they are merged
  into one requirement;
- whatever a dependency or endpoint declares with ``@problems(...)`` (409 for an
  Idempotency-Key conflict, 429 for a rate limit...): a dependency states what it can refuse once,
  and every route using it documents it.

Statuses a route already documents by hand (``responses={404: ...}``) keep their description and
get the problem+json schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security.base import SecurityBase

from chassis.errors import PROBLEM_JSON

__all__ = ["PROBLEM_SCHEMA", "DocumentedScheme", "install_openapi", "problems", "raw_body"]

F = TypeVar("F", bound=Callable[..., Any])

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details, with the trace id of the request",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "trace_id": {"type": ["string", "null"]},
        "request_id": {"type": "string"},
    },
    "additionalProperties": True,
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "string"}}
}


class DocumentedScheme(SecurityBase):
    """A FastAPI security scheme for the document only: ``Security(DocumentedScheme(HTTPBearer(...)))``
    puts the scheme on the operation and reads nothing. Our dependencies read credentials
    themselves, to answer our own problem+json; FastAPI's classes would answer some malformed
    values first, in their own words (``HTTPBasic`` does, even with ``auto_error=False``)."""

    def __init__(self, scheme: SecurityBase) -> None:
        self.model = scheme.model
        self.scheme_name = scheme.scheme_name

    async def __call__(self) -> None:
        return None


def problems(*statuses: int) -> Callable[[F], F]:
    """Mark a dependency or endpoint with the error statuses it can answer."""

    def mark(function: F) -> F:
        function.__problems__ = (*getattr(function, "__problems__", ()), *statuses)  # type: ignore[attr-defined]
        return function

    return mark


def raw_body(content: dict[str, Any], *, one_type: bool = True, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` of a route that reads its body itself (``chassis.limits.read_limited_body``,
    so FastAPI cannot see it): the body, by media type -> schema, and with ``one_type`` (the route
    refuses any other media type) its 415. The statuses of every body are added as for any other.
    """
    extra: dict[str, Any] = {
        "requestBody": {
            "required": required,
            "content": {media: {"schema": schema} for media, schema in content.items()},
        }
    }
    if one_type:
        extra["responses"] = {"415": {"description": f"a body of another type than {', '.join(content)}"}}
    return extra


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with the generator below (cached like FastAPI's own)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        openapi_version=app.openapi_version,
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 shape, not ours
        schemas.pop(name, None)
    # Included routers stay nested in app.routes (FastAPI >= 0.16x); their route contexts carry
    # the effective path and dependencies.
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is not None:
                if operation.get("security"):  # all of them together, not any one (see above)
                    operation["security"] = [
                        {k: v for each in operation["security"] for k, v in each.items()}
                    ]
                _document_errors(operation, route.dependant)
    return schema


def _document_errors(operation: dict[str, Any], dependant: Dependant) -> None:
    statuses = {503} | {
        int(code) for code in operation.get("responses", {}) if code.isdigit() and int(code) >= 400
    }
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        statuses |= {400, 413}
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if operation.get("security"):
        statuses |= {401, 403}
    statuses |= set(_declared(dependant))
    responses = operation.setdefault("responses", {})
    for status in sorted(statuses):
        answer = responses.setdefault(str(status), {"description": HTTPStatus(status).phrase})
        answer["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
        if status in (429, 503):
            answer.setdefault("headers", {}).update(_RETRY_AFTER)


def _declared(dependant: Dependant) -> Iterator[int]:
    """``@problems`` marks on the endpoint and on every dependency below it."""
    yield from getattr(dependant.call, "__problems__", ())
    for sub in dependant.dependencies:
        yield from _declared(sub)
