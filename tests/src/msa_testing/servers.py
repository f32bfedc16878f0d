"""A real HTTP server whose behaviour a test switches: answer, fail with 500, or hang."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from msa_cli.devstack import free_port

__all__ = ["FlakyServer", "flaky_server"]

Mode = Literal["ok", "fail", "hang"]


class FlakyServer:
    def __init__(self) -> None:
        self.mode: Mode = "ok"
        self.hits = 0
        self.port = free_port()
        self.last_headers: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _endpoint(self, request: Request) -> Response:
        self.hits += 1
        self.last_headers = dict(request.headers)
        if self.mode == "fail":
            return JSONResponse({"error": "injected"}, status_code=500)
        if self.mode == "hang":
            await asyncio.sleep(30)
        return JSONResponse({"ok": True, "path": request.url.path})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST"])])


@contextmanager
def flaky_server() -> Iterator[FlakyServer]:
    server = FlakyServer()
    config = uvicorn.Config(
        server.app(),
        host="127.0.0.1",
        port=server.port,
        log_config=None,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield server
    finally:
        uv.should_exit = True
        thread.join(10)
