"""The transport under every ``Downstream``: httpx's API on aiohttp's connection pool.

Services code against httpx (``Downstream.request`` returns an ``httpx.Response``); this only
replaces what moves the bytes. Why: httpcore checks every pooled connection with a ``poll()``
system call on each request, so a gateway with 16 connections to a callee spent a third of its
event loop choosing one. Measured by ``scripts/bench_gateway.py`` (bare FastAPI proxy, same run):
2.44 ms of CPU per call over httpcore, 0.94 ms over aiohttp (README "Measured").

Bodies are read whole (no streaming: no call between our services needs it). aiohttp's errors
become httpx's, by what happened: refused or unreachable -> ``ConnectError``, no connection in
time -> ``ConnectTimeout``, no answer in time -> ``ReadTimeout``, the peer closed or broke the
connection -> ``RemoteProtocolError``/``ReadError``. A cancel (the caller's time budget) passes
through untouched.
"""

from __future__ import annotations

import aiohttp
import httpx
from multidict import CIMultiDict
from yarl import URL

__all__ = ["AiohttpTransport"]


class AiohttpTransport(httpx.AsyncBaseTransport):
    # keep-alive below uvicorn's 5 s: a request is never written onto a connection the server is closing
    def __init__(self, *, max_connections: int = 100, keepalive_s: float = 4.0) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None  # made on first use, in the running loop

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=self._keepalive_s)
        # httpx already set the headers it means to send: aiohttp adds no User-Agent or Content-Type
        # of its own. No cookie jar: a Set-Cookie in one answer must never ride along on the next
        # call, made for another user.
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        try:
            async with session.request(
                request.method,
                # as httpx encoded it: yarl would otherwise decode %2E and resolve the dot segment
                URL(str(request.url), encoded=True),
                headers=CIMultiDict(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=timeout.get("connect"), sock_read=timeout.get("read")
                ),
            ) as answer:
                content = await answer.read()
                return httpx.Response(
                    answer.status,
                    headers=list(answer.raw_headers),
                    content=content,
                    extensions={"http_version": b"HTTP/1.1", "reason_phrase": (answer.reason or "").encode()},
                    request=request,
                )
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except (aiohttp.ServerTimeoutError, TimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "no answer in time", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}", request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
