"""The server's own limits (chassis.server), on a service started the way production starts it:
``serve()`` in its own process, spoken to over raw sockets.

431 for a request head over ``SERVER__MAX_HEADER_BYTES`` (an endless one is cut off, not read),
408 for a head slower than ``SERVER__HEADER_TIMEOUT_S``, 503 beyond ``SERVER__MAX_CONNECTIONS``;
ordinary requests pass.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from msa_testing.servers import ServedProcess, served_process

PROBLEM = "application/problem+json"
KIB, MIB = 1024, 1024 * 1024
HEADER_TIMEOUT_S = 1.0

# What every service's console script does: build the app, then chassis.serve().
SERVICE = (
    "from chassis import ServiceSettings, create_app, serve; serve(lambda: create_app(ServiceSettings()))"
)


class Service(ServedProcess):
    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(kib) / 1024


@contextlib.contextmanager
def service(redis_url: str, log: Path, **server: Any) -> Iterator[Service]:
    limits = {f"SERVER__{name.upper()}": str(value) for name, value in server.items()}
    with served_process(SERVICE, redis_url=redis_url, log=log, env=limits) as served:
        yield Service(served.port, served.process)


@pytest.fixture(scope="module")
def edge(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with service(
        redis_server.url, tmp_path_factory.mktemp("edge") / "service.log", header_timeout_s=HEADER_TIMEOUT_S
    ) as running:
        yield running


def request(path: str = "/health/live", **headers: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: edge-test", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def exchange(sock: socket.socket, data: bytes) -> tuple[http.client.HTTPResponse, bytes]:
    sock.sendall(data)
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response, response.read()


def assert_problem(response: http.client.HTTPResponse, body: bytes, status: int) -> dict[str, Any]:
    assert response.status == status, body
    assert response.getheader("content-type") == PROBLEM
    assert response.getheader("connection") == "close"
    problem: dict[str, Any] = json.loads(body)
    assert problem["status"] == status
    return problem


def closed(sock: socket.socket, within_s: float = 3.0) -> bool:
    """True once the server has ended the connection (end of stream or reset)."""
    sock.settimeout(within_s)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def test_a_request_head_over_the_limit_is_answered_431_and_closed(edge: Service) -> None:
    with edge.connect() as sock:
        ok, _ = exchange(sock, request(**{"X-Pad": "a" * 16 * KIB, "Cookie": "c=" + "b" * 8 * KIB}))
        assert ok.status == 200  # a large but ordinary head passes, and the connection stays usable
        response, body = exchange(sock, request(**{"X-Big": "a" * 64 * KIB}))
        problem = assert_problem(response, body, 431)
        assert "32768 bytes" in problem["detail"]
        assert closed(sock)
    with edge.connect() as sock:  # a long request target counts too
        response, body = exchange(sock, request("/health/live?" + "q" * 40 * KIB))
        assert_problem(response, body, 431)


def send_endless_header(service: Service, total: int = 64 * MIB) -> int:
    """Send one header of ``total`` bytes, never finished; the bytes the server took before it hung up."""
    sent = 0
    with service.connect() as sock, contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: edge-test\r\nX-Big: ")
        chunk = b"a" * 64 * KIB
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
        time.sleep(HEADER_TIMEOUT_S / 2)  # unfinished: the server holds what it took
    return sent


def test_endless_headers_are_cut_off_and_not_buffered(edge: Service) -> None:
    before = edge.rss_mib()
    with ThreadPoolExecutor(4) as pool:
        sent = list(pool.map(lambda _: send_endless_header(edge), range(4)))
    after = edge.rss_mib()
    print(
        f"four unfinished 64 MiB headers: sent {[s // KIB for s in sent]} KiB, RSS {before:.0f} -> {after:.0f} MiB"
    )
    assert all(s < 8 * MIB for s in sent), sent  # hung up on after a few reads, not at 64 MiB
    assert after - before < 32, (before, after)
    with edge.connect() as sock:
        assert exchange(sock, request())[0].status == 200


def test_a_slow_request_head_is_answered_408_and_closed_in_time(edge: Service) -> None:
    with edge.connect() as sock:
        # The timer runs from a request's first byte: a kept-alive connection may idle between
        # requests (that is the keep-alive timeout's business: uvicorn's, 5 s).
        assert exchange(sock, request())[0].status == 200
        time.sleep(HEADER_TIMEOUT_S * 1.5)
        assert exchange(sock, request())[0].status == 200

    with edge.connect() as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: edge-test\r\n")
        started, received = time.monotonic(), b""
        sock.settimeout(0.1)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while time.monotonic() - started < HEADER_TIMEOUT_S + 3:
                sock.sendall(b"X")  # one byte of a header every 0.1 s: never finished
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                received += chunk
        elapsed = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert PROBLEM.encode() in received
    assert elapsed < HEADER_TIMEOUT_S + 1.5, elapsed

    with edge.connect() as sock:  # a connection that sends nothing is ended too
        started = time.monotonic()
        assert closed(sock, within_s=HEADER_TIMEOUT_S + 2)
        assert time.monotonic() - started < HEADER_TIMEOUT_S + 1.5


def test_requests_beyond_the_connection_bound_are_answered_503(redis_server: Any, tmp_path: Path) -> None:
    with service(redis_server.url, tmp_path / "service.log", max_connections=4) as bounded:
        with contextlib.ExitStack() as stack:
            held = [stack.enter_context(bounded.connect()) for _ in range(4)]
            for sock in held:  # four open connections, each having been answered
                assert exchange(sock, request())[0].status == 200
            with bounded.connect() as fifth:
                response, body = exchange(fifth, request())
                assert_problem(response, body, 503)
                assert response.getheader("retry-after") == "1"
            held[0].close()
            time.sleep(0.2)
            with bounded.connect() as again:  # below the bound again
                assert exchange(again, request())[0].status == 200
