"""/encrypt, /decrypt and /monitor refuse an oversize body while it streams in.

Over a real socket: the client sends the route's limit plus 1 MiB of a much larger body, chunked or
with a Content-Length, and keeps the connection open. The 413 problem+json arrives before it sends
the rest; a service that read the whole body before checking would still be waiting for it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from config_service.main import create
from config_service.settings import Settings
from msa_testing.apps import served

KIB, MIB = 1024, 1024 * 1024
CREDENTIALS = base64.b64encode(b"config-client:dev-only-config-client-password").decode()


@pytest.fixture
async def config_url(git_repo: Any, redis_url: str) -> AsyncIterator[str]:
    git_repo.commit("init", **{"application.yml": "greeting: hello\n"})
    settings = Settings(
        config_repo_uri=str(git_repo.root),
        config_search_paths="deploy/config-repo",
        redis_url=redis_url,
        zipkin_endpoint=None,
        config_poll_interval_s=0,
    )
    async with served(create(settings)) as url:
        yield url


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status = int((await reader.readline()).split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, await reader.readexactly(int(headers["content-length"]))


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
@pytest.mark.parametrize(
    ("path", "limit"), [("/encrypt", 64 * KIB), ("/decrypt", 64 * KIB), ("/monitor", MIB)]
)
async def test_an_oversize_body_is_refused_before_it_is_all_sent(
    config_url: str, path: str, limit: int, framing: str
) -> None:
    url = urlsplit(config_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    size = 200 * MIB  # what the client claims (or would go on sending)
    length = "Transfer-Encoding: chunked" if framing == "chunked" else f"Content-Length: {size}"
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: config\r\nAuthorization: Basic {CREDENTIALS}\r\n"
        f"Content-Type: text/plain\r\n{length}\r\n\r\n".encode()
    )
    chunk, sent = b"a" * 64 * KIB, 0
    try:
        while sent < limit + MIB:
            writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if framing == "chunked" else chunk)
            await writer.drain()
            sent += len(chunk)
        # The body is far from finished and the connection stays open.
        status, headers, body = await asyncio.wait_for(read_response(reader), 10)
    finally:
        writer.close()
    assert status == 413, body
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 413
    assert f"at most {limit} bytes" in problem["detail"]
