"""The reference points of ``scripts/bench_gateway.py``, each run as a process of its own so its CPU
can be read from /proc: one route ``GET /products/{id}`` relaying catalog's answer.

- ``bare``: FastAPI and one pooled ``httpx.AsyncClient``, nothing else (the floor for Python);
- ``bare-aiohttp``: the same on the chassis's transport (``chassis.transport``: httpx over aiohttp);
- ``chassis``: a chassis service (``create_app``/``serve``: tracing, logs, request ids, limits)
  making one guarded call through its ``Downstream``.

    python -m msa_testing.bench_apps bare|bare-aiohttp|chassis <port> <catalog_url> [redis_url zipkin_endpoint]
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Response

from chassis import Downstream, ServiceSettings, create_app, downstream, serve
from chassis.http import path_segment
from chassis.transport import AiohttpTransport

ROUTE = "/products/{product_id}"


def bare(catalog_url: str, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    client = httpx.AsyncClient(base_url=catalog_url, transport=transport)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.get(ROUTE)
    async def product(product_id: str) -> Response:
        answer = await client.get(f"/products/{path_segment(product_id)}")
        return Response(answer.content, answer.status_code, media_type="application/json")

    return app


def chassis(catalog_url: str, port: int, redis_url: str, zipkin_endpoint: str) -> FastAPI:
    settings = ServiceSettings(
        service_name="bench-chassis",
        port=port,
        host="127.0.0.1",
        redis_url=redis_url,
        zipkin_endpoint=zipkin_endpoint or None,
    )
    router = APIRouter()

    @router.get(ROUTE)
    async def product(
        product_id: str, catalog: Annotated[Downstream, Depends(downstream("catalog"))]
    ) -> Response:
        answer = await catalog.request("GET", f"/products/{path_segment(product_id)}")
        return Response(answer.content, answer.status_code, media_type="application/json")

    return create_app(settings, routers=[router], downstreams={"catalog": catalog_url})


def main(kind: str, port: int, catalog_url: str, redis_url: str = "", zipkin_endpoint: str = "") -> None:
    if kind == "chassis":
        serve(lambda: chassis(catalog_url, port, redis_url, zipkin_endpoint))
        return
    transport: httpx.AsyncBaseTransport | None = None
    if kind == "bare-aiohttp":
        transport = AiohttpTransport()
    app = bare(catalog_url, transport)
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, http="httptools")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], *sys.argv[4:6])
