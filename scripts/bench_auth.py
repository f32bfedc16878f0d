"""What authentication costs per request: login (scrypt), a bearer check through gateway-mobile with
the introspection cache on and off, and chassis.auth's offline JWT verification.

auth-service and gateway-mobile run in this process on real sockets (uvicorn), with a real
redis-server on a loopback port; requests go over HTTP.

    uv run python scripts/bench_auth.py [N]
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from auth_service.main import create as create_auth
from auth_service.settings import Settings as AuthSettings
from chassis.auth import AuthServiceClient, JwtVerifier
from chassis.auth import AuthSettings as VerifySettings
from chassis.state import resource
from gateway_mobile.main import create as create_mobile
from gateway_mobile.settings import Settings as MobileSettings
from msa_cli.devstack import free_port
from msa_testing.infra import start_redis

N = int(sys.argv[1]) if len(sys.argv) > 1 else 500


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, lifespan="on", timeout_graceful_shutdown=3
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # bounded: uvicorn has no "started" event to await
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def timed(label: str, n: int, call: Callable[[], Awaitable[Any]]) -> None:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    print(
        f"{label:<48} n={n:<5} p50={statistics.median(samples):7.2f} ms  "
        f"p90={samples[int(n * 0.9) - 1]:7.2f} ms  p99={samples[max(0, int(n * 0.99) - 1)]:7.2f} ms"
    )


async def main() -> None:
    redis = start_redis()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            auth_app = create_auth(
                AuthSettings(
                    data_dir=Path(tmp), redis_url=redis.url_for(1), zipkin_endpoint=None, log_level="WARNING"
                )
            )
            async with served(auth_app) as auth_url:
                for cache_s in (5.0, 0.0):
                    mobile = create_mobile(
                        MobileSettings(
                            redis_url=redis.url_for(1),
                            auth_service_url=auth_url,
                            zipkin_endpoint=None,
                            log_level="WARNING",
                            auth={"introspection_cache_s": cache_s},
                        )
                    )
                    async with served(mobile) as url, httpx.AsyncClient(base_url=url) as client:
                        for _ in range(100):
                            if resource(mobile, AuthServiceClient).subscribed:
                                break
                            await asyncio.sleep(0.02)
                        body = {"username": "alice", "password": "alice-password"}
                        if cache_s:
                            await timed(
                                "login POST /auth/token (scrypt + session)",
                                30,
                                lambda body=body: client.post("/auth/token", json=body),  # type: ignore[misc]
                            )
                        token = (await client.post("/auth/token", json=body)).json()["access_token"]
                        headers = {"Authorization": f"Bearer {token}"}
                        label = f"GET /m/me, introspection cache {'on (5 s)' if cache_s else 'off'}"
                        await timed(label, N, lambda headers=headers: client.get("/m/me", headers=headers))  # type: ignore[misc]
                async with httpx.AsyncClient(base_url=auth_url) as client:
                    jwks = (await client.get("/.well-known/jwks.json")).json()

                async def fetch() -> dict[str, Any]:
                    return dict(jwks)

                verifier = JwtVerifier(fetch_jwks=fetch, settings=VerifySettings())
                await timed(
                    "chassis.auth JwtVerifier.verify (offline RS256)", N, lambda: verifier.verify(token)
                )
    finally:
        redis.stop()


if __name__ == "__main__":
    asyncio.run(main())
