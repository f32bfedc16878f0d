"""Real HTTP servers for tests: one whose behaviour a test switches (answer, fail with 500, or
hang), and a chassis service started the way production starts it (``serve()`` in its own process)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from msa_cli.devstack import free_port
from msa_testing.polling import wait_until

__all__ = ["FlakyServer", "ServedProcess", "flaky_server", "served_process"]

Mode = Literal["ok", "fail", "hang"]


class FlakyServer:
    def __init__(self) -> None:
        self.mode: Mode = "ok"
        self.hits = 0
        self.port = free_port()
        self.last_headers: dict[str, str] = {}
        self.next_statuses: list[int] = []  # answered one per request, in order, before ``mode``
        self.delay_s = 0.0  # before every answer
        self.body: dict[str, object] | None = None  # what "ok" answers (else its path)
        self.in_flight = self.most_in_flight = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _endpoint(self, request: Request) -> Response:
        self.hits += 1
        self.last_headers = dict(request.headers)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: Request) -> Response:
        if self.next_statuses:
            return JSONResponse({"error": "scripted"}, status_code=self.next_statuses.pop(0))
        if self.mode == "fail":
            return JSONResponse({"error": "injected"}, status_code=500)
        if self.mode == "hang":
            await asyncio.sleep(30)
        return JSONResponse(self.body if self.body is not None else {"ok": True, "path": request.url.path})

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


@dataclass
class ServedProcess:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# Variables of the test run's own environment that would change how the child serves.
_UNSET = ("TRUSTED_PROXIES", "FORWARDED_ALLOW_IPS")


@contextmanager
def served_process(
    script: str, *, redis_url: str, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[ServedProcess]:
    """``script`` (Python source that ends in ``chassis.serve(...)``) in its own process on a free
    loopback port, with a minimal service environment plus ``env``; ready once /health/live
    answers; terminated afterwards. Its output goes to ``log``."""
    port = free_port()
    environ = {
        **{k: v for k, v in os.environ.items() if k not in _UNSET},
        "SERVICE_NAME": "edge-test",
        "ENV": "test",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "REDIS_URL": redis_url,
        "ZIPKIN_ENDPOINT": "",
        "CONFIG_SERVICE_URL": "",
        "LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", script], env=environ, stdout=out, stderr=out)
    served = ServedProcess(port, process)
    try:
        wait_until(
            "the service",
            lambda: process.poll() is None and httpx.get(f"{served.url}/health/live").is_success,
            timeout_s=30,
            every_s=0.1,
        )
        yield served
    finally:
        process.terminate()
        process.wait(10)
