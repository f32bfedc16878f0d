"""chassis.transport against real sockets: what goes out is what httpx built, what comes back is an
httpx.Response, and each way a call can go wrong becomes the httpx error the breaker counts."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from chassis import BreakerRegistry, Downstream, LiveSettings, ServiceSettings
from chassis.http import _ServiceClient
from chassis.transport import AiohttpTransport
from msa_cli.devstack import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> AsyncIterator[str]:
    """A raw socket server running ``handler`` per connection; every connection and handler is
    closed when the test is done with it."""
    handlers: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        await handler(reader, writer)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        for writer in writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await server.wait_closed()


async def _head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    line, *fields = head.strip().split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (field.split(":", 1) for field in fields)}
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return line, headers, body


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    """Answers with what it got (request line, headers, body), gzip-encoded, two cookies."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line, headers, body = await _head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            payload = gzip.compress(
                json.dumps({"line": line, "headers": headers, "body": body.decode()}).encode()
            )
            writer.write(
                b"HTTP/1.1 207 Multi-Status\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
                b"set-cookie: a=1\r\nset-cookie: b=2\r\n"
                + f"content-length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        writer.close()

    async for url in _serve(handler):
        yield url


async def test_a_request_goes_out_as_httpx_built_it_and_comes_back_as_an_httpx_response(echo: str) -> None:
    async with httpx.AsyncClient(base_url=echo, transport=AiohttpTransport()) as client:
        answer = await client.post("/items/%2E?q=a%20b", json={"n": 1}, headers={"x-request-id": "r-1"})
        again = await client.post("/items/x/release")  # no body; the same pooled connection
    assert answer.status_code == 207
    assert answer.reason_phrase == "Multi-Status"
    assert answer.headers.get_list("set-cookie") == ["a=1", "b=2"]
    sent = answer.json()  # gzip decoded by httpx, as with its own transport
    assert sent["line"] == "POST /items/%2E?q=a%20b HTTP/1.1", "no dot segment resolved, nothing re-encoded"
    assert sent["headers"]["x-request-id"] == "r-1"
    assert sent["headers"]["content-type"] == "application/json"
    assert sent["headers"]["user-agent"].startswith("python-httpx/")
    assert json.loads(sent["body"]) == {"n": 1}
    assert again.json()["line"] == "POST /items/x/release HTTP/1.1"
    assert "content-type" not in again.json()["headers"], "aiohttp adds none of its own"


async def test_nothing_listening_is_a_connect_error() -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port()}/x")


async def test_a_connection_closed_without_an_answer_is_a_protocol_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _head(reader)
        writer.close()

    async for url in _serve(hang_up):
        async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(url + "/x")


async def test_no_answer_within_the_read_timeout_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _head(reader)
        await asyncio.sleep(2)
        writer.close()

    async for url in _serve(silent):
        async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=httpx.Timeout(0.2)) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(url + "/x")


async def test_a_cancel_passes_through_and_the_pool_stays_usable(echo: str) -> None:
    async with httpx.AsyncClient(base_url=echo, transport=AiohttpTransport()) as client:
        call = asyncio.ensure_future(client.get("/x"))
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert (await client.get("/y")).status_code == 207


async def test_a_downstream_keeps_no_cookies(echo: str) -> None:
    """A Set-Cookie in one answer must never ride along on the next call (another user's). By host
    name: aiohttp's default jar would keep cookies of a named host (it drops those of an IP)."""
    client = Downstream(
        caller="test", callee="echo", base_url=echo.replace("127.0.0.1", "localhost"), live=LiveSettings(ServiceSettings(zipkin_endpoint=None)),
        registry=BreakerRegistry(), breaker_redis=None,
    )  # fmt: skip
    try:
        first = await client.request("GET", "/a")
        assert first.headers.get_list("set-cookie") == ["a=1", "b=2"]
        second = await client.get_json("/b")
    finally:
        await client.aclose()
    assert "cookie" not in second["headers"]


@pytest.mark.parametrize(
    ("base_url", "url", "params"),
    [
        ("http://catalog:8000", "/products/p-1001", None),
        ("http://catalog:8000", "/stock", {"ids": "p-1001,p-1002"}),
        ("http://catalog:8000", "/stock", {"ids": ["p-1", "p-2"], "n": 3, "flag": True, "none": None}),
        ("http://catalog:8000", "/search", {"q": "tent & stove?/#", "é": "ü 100%"}),
        ("http://catalog:8000", "/a b/%2E/../c", {}),
        ("http://catalog:8000", "/orders?page=2", None),
        ("http://catalog:8000", "/orders?page=2", {"size": 5}),  # httpx's own path: merged queries
        ("http://catalog:8000/api", "/products", {"size": 3}),
        ("http://user:pw@catalog:8000", "/products", None),  # httpx's own path: credentials
        ("http://catalog:8000", "http://other:9000/x", {"a": 1}),  # httpx's own path: absolute
        ("http://catalog:8000", "//other/x", None),
        ("http://catalog:8000", "/a#frag", None),  # httpx's own path: a fragment
        ("http://catalog:8000", "/a#frag", {"q": 1}),
        ("http://[::1]:8000", "/products/p-1", {"q": "x y"}),
        ("", "/products", None),  # httpx's own path: no base URL
    ],
)
@pytest.mark.parametrize("client_params", [None, {"c": "1"}])
def test_a_downstream_builds_the_request_httpx_builds(
    base_url: str, url: str, params: object, client_params: object
) -> None:
    """``_ServiceClient`` parses a path's URL once; what it builds must be what httpx builds."""
    settings = {
        "base_url": base_url, "params": client_params, "headers": {"user-agent": "msa-chassis/test"},
        "timeout": 2.0,
    }  # fmt: skip
    ours, theirs = _ServiceClient(**settings), httpx.AsyncClient(**settings)  # type: ignore[arg-type]
    for method, body in (("GET", {}), ("POST", {"json": {"lines": [1]}})):
        built = [
            client.build_request(method, url, params=params, headers={"x-request-id": "r-1"}, **body)  # type: ignore[arg-type]
            for client in (ours, theirs)
        ]
        assert [str(request.url) for request in built] == [str(built[1].url)] * 2
        assert built[0].url == built[1].url
        assert built[0].headers.multi_items() == built[1].headers.multi_items()
        assert (built[0].method, built[0].extensions, built[0].read()) == (
            built[1].method, built[1].extensions, built[1].read(),
        )  # fmt: skip
    # the plain bases take the one-parse way (else this test would pass with it gone)
    plain = base_url.startswith("http://") and "@" not in base_url
    assert (ours._base is not None and ours._base[1] is not None) == plain
