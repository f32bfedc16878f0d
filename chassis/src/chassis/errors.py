"""RFC 9457 problem+json for every error a service answers, each carrying the trace id."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chassis.context import request_id_var
from chassis.tracing import current_trace_id

__all__ = ["PROBLEM_JSON", "ServiceError", "install_error_handlers", "problem_response"]

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class ServiceError(Exception):
    """The one exception services raise for an answer that is not a success.

    Subclass it with class-level defaults (``status``, ``title``, ``type``, ``retry_after_s``:
    a ``Retry-After`` header on every answer of that kind) or pass them.
    """

    status: int = 500
    title: str | None = None
    type: str = "about:blank"
    retry_after_s: int | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        title: str | None = None,
        type: str | None = None,
        headers: Mapping[str, str] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title or self.title or "")
        self.detail = detail
        if status is not None:
            self.status = status
        if title is not None:
            self.title = title
        if type is not None:
            self.type = type
        self.headers = dict(headers or {})
        if self.retry_after_s is not None:
            self.headers.setdefault("Retry-After", str(self.retry_after_s))
        self.extras = dict(extras or {})


def problem_response(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type: str = "about:blank",
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extras: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type,
        "title": title or _phrase(status),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extras)
    body["trace_id"] = current_trace_id()
    if (request_id := request_id_var.get()) is not None:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if exc.status >= 500:
        log.warning("answering %s: %s", exc.status, exc)
    return problem_response(
        exc.status,
        title=exc.title,
        detail=exc.detail,
        type=exc.type,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extras,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != _phrase(exc.status_code) else None
    return problem_response(
        exc.status_code, detail=detail, instance=request.url.path, headers=exc.headers or {}
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Never echo the rejected input: it may be a password or a token.
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return problem_response(
        422,
        title="Request validation failed",
        detail=f"{len(errors)} field(s) failed validation",
        instance=request.url.path,
        errors=errors,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
