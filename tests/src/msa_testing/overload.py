"""A bounded load generator for overload tests and benchmarks: many clients, each sending its next
request as soon as its last one was answered (a closed loop: what a crowd of impatient users or
callers without backoff does).

    result = await overload(f"{url}/work", clients=300, seconds=4)
    result.statuses            # Counter({200: 812, 503: 9120})
    result.percentiles("5xx")  # {"p50": 3.1, "p90": 7.9, "p99": 21.0}  (ms, client-side)

Hundreds of clients in one Python process saturate it: their latencies include their own wait
for its event loop. ``probe_every_s`` adds a probe: a few more clients (``PROBE_CONNECTIONS``)
in a process of their own, each sending a request that often. Their latencies
(``percentiles("probe 5xx")``...) are the server's answer time as a client that is not itself
overloaded sees it.

Bounded in clients, time and requests, and aimed at this machine only: the URL's host must be a
loopback address (the containers tier publishes its ports on 127.0.0.1 too).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
import ssl
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

__all__ = ["OverloadResult", "overload"]

MAX_CLIENTS = 1000
MAX_SECONDS = 60.0
MAX_REQUESTS = 500_000
FAILED = 0  # the status recorded for a request that got no answer (connection error, timeout)


@dataclass
class OverloadResult:
    clients: int
    seconds: float  # from the first request sent to the last answer received
    statuses: Counter[int] = field(default_factory=Counter)
    # per class ("2xx".."5xx", "failed"), each client's first request left out: see first_ms; the
    # probe's (not counted in statuses) as "probe 2xx"...
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    # each client's first request, whatever its answer: it opens the connection, and a server busy
    # with the others accepts it late (hundreds at once: seconds, the server's accept queue)
    first_ms: list[float] = field(default_factory=list)
    # requests that got no answer while their client was connecting (its first, or the next after
    # one that got none: httpx drops that connection); in statuses as FAILED too
    connecting_failed: int = 0
    retry_after: Counter[str | None] = field(default_factory=Counter)  # of the 503 and 429 answers

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def rps(self) -> float:
        return self.total / self.seconds if self.seconds else 0.0

    def percentiles(self, status_class: str, points: tuple[int, ...] = (50, 90, 99)) -> dict[str, float]:
        """Client-side latency percentiles (ms) of one class of answers ("first": the first
        requests); empty if it had none."""
        values = sorted(self.first_ms if status_class == "first" else self.latencies_ms.get(status_class, ()))
        if not values:
            return {}
        return {f"p{p}": round(values[min(len(values) - 1, len(values) * p // 100)], 1) for p in points}

    def summary(self) -> str:
        classes = ", ".join(
            f"{name} {self.percentiles(name)}"
            for name in sorted(self.latencies_ms)
            if self.latencies_ms[name]
        )
        return (
            f"{self.clients} clients, {self.total} requests in {self.seconds:.1f} s ({self.rps:.0f}/s), "
            f"statuses {dict(sorted(self.statuses.items()))}; latency ms {classes}; "
            f"first request of each client (connecting) {self.percentiles('first')}"
            + (f"; unanswered while connecting: {self.connecting_failed}" if self.connecting_failed else "")
        )


def _status_class(status: int) -> str:
    return "failed" if status == FAILED else f"{status // 100}xx"


# The probe: threads with blocking http.client, each on a connection of its own that it opens
# (with a first request) at once, then prints "ready"; given a duration on stdin, each sends a
# request every ``every`` seconds for that long, then it prints [[status, ms], ...] (0: failed).
_PROBE = """
import http.client, json, sys, threading, time
from urllib.parse import urlsplit
url, every, timeout, threads = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
target = urlsplit(url)
path = (target.path or "/") + ("?" + target.query if target.query else "")
samples, opened, go, stop_at = [], threading.Barrier(threads + 1), threading.Event(), [0.0]

def get(conn):
    began = time.perf_counter()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        status = response.status
    except (OSError, http.client.HTTPException):
        conn.close()  # http.client opens a new one for the next request
        status = 0
    return [status, (time.perf_counter() - began) * 1000]

def probe():
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=timeout)
    get(conn)
    opened.wait()
    go.wait()
    while time.monotonic() < stop_at[0]:
        samples.append(get(conn))
        time.sleep(every)

pool = [threading.Thread(target=probe) for _ in range(threads)]
for thread in pool:
    thread.start()
opened.wait()
print("ready", flush=True)
stop_at[0] = time.monotonic() + float(sys.stdin.readline())
go.set()
for thread in pool:
    thread.join()
print(json.dumps(samples))
"""
PROBE_CONNECTIONS = 8


class _Probe:
    """The probe's process. Its connections are opened before the load: an overloaded server
    accepts new connections late (uvloop: one per event-loop turn), and their wait is not what
    the probe measures."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def open(cls, url: str, every_s: float, timeout_s: float) -> _Probe:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _PROBE,
            url,
            str(every_s),
            str(timeout_s),
            str(PROBE_CONNECTIONS),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        probe = cls(process)
        assert process.stdout is not None
        try:
            ready = await asyncio.wait_for(process.stdout.readline(), timeout_s + 5)
        except BaseException:
            await probe.close()
            raise
        if ready != b"ready\n":
            await probe.close()
            raise RuntimeError("the probe did not start")
        return probe

    async def run(self, seconds: float) -> list[tuple[int, float]]:
        out, _ = await self.process.communicate(f"{max(seconds, 0.0)}\n".encode())
        if self.process.returncode:
            raise RuntimeError(f"the probe exited with status {self.process.returncode}")
        return [(int(status), float(ms)) for status, ms in json.loads(out)]

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


def _check_target(url: str) -> None:
    host = httpx.URL(url).host
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"overload() sends load to this machine only (a loopback address), not to {host!r}")


async def overload(
    url: str,
    *,
    clients: int,
    seconds: float,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    max_requests: int = MAX_REQUESTS,
    probe_every_s: float | None = None,
    honor_retry_after: bool = False,
) -> OverloadResult:
    """``clients`` concurrent clients GET ``url`` for ``seconds`` (at most ``max_requests`` in all).

    Each client has its own keep-alive connection (one ``httpx.AsyncClient``: a shared pool of
    hundreds of connections costs more client CPU than the server under test). An answer that
    does not come within ``timeout_s`` counts as failed. ``probe_every_s``: and the probe (see
    the module's docstring), from when the load is on to the end (it sends no ``headers``).
    ``honor_retry_after``: a client answered 503 or 429 waits its ``Retry-After`` (seconds) before
    its next request, as a well-behaved client does; otherwise it asks again at once."""
    _check_target(url)
    if not 1 <= clients <= MAX_CLIENTS or not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"clients 1..{MAX_CLIENTS} and seconds up to {MAX_SECONDS:g}, please")
    if probe_every_s is not None and not 0.001 <= probe_every_s <= seconds:
        raise ValueError(f"a probe every 0.001..{seconds:g} s, please")
    result = OverloadResult(clients=clients, seconds=0.0)
    latencies: dict[str, list[float]] = result.latencies_ms
    tls = ssl.create_default_context()  # one for all: each client would load the CA store again
    sent = 0
    stop_at = math.inf
    crowd_in = asyncio.Event()  # half the clients have had their first answer: the load is on

    async def probing(probe: _Probe) -> list[tuple[int, float]]:
        # From when the load is on (half the clients answered, or a quarter of the time gone):
        # hundreds of clients take a while to connect, and a probe from the start would be the
        # server's first load, and slow their start.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(crowd_in.wait(), seconds / 4)
        return await probe.run(stop_at - time.monotonic())

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal sent
        first = connecting = True
        while time.monotonic() < stop_at and sent < max_requests:
            sent += 1
            began = time.monotonic()
            try:
                response = await http.get(url)
                status = response.status_code
            except httpx.HTTPError:
                status = FAILED
            took_ms = (time.monotonic() - began) * 1000
            result.connecting_failed += connecting and status == FAILED
            connecting = status == FAILED
            if first:
                result.first_ms.append(took_ms)
                first = False
                if len(result.first_ms) * 2 >= clients:
                    crowd_in.set()
            else:
                latencies.setdefault(_status_class(status), []).append(took_ms)
            result.statuses[status] += 1
            if status in (429, 503):
                retry_after = response.headers.get("retry-after")
                result.retry_after[retry_after] += 1
                if honor_retry_after and retry_after and retry_after.isdigit():
                    await asyncio.sleep(min(float(retry_after), max(0.0, stop_at - time.monotonic())))

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        probe = None
        if probe_every_s is not None:
            probe = await _Probe.open(url, probe_every_s, timeout_s)
            stack.push_async_callback(probe.close)
        # All made before the first request: made on the way, each would delay the others' requests.
        pool = [
            await stack.enter_async_context(
                httpx.AsyncClient(headers=headers, timeout=timeout_s, limits=limits, verify=tls)
            )
            for _ in range(clients)
        ]
        started = time.monotonic()
        stop_at = started + seconds
        probed = asyncio.create_task(probing(probe)) if probe is not None else None
        await asyncio.gather(*(client(http) for http in pool))
        crowd_in.set()
        result.seconds = time.monotonic() - started
        for status, took_ms in await probed if probed is not None else ():
            latencies.setdefault(f"probe {_status_class(status)}", []).append(took_ms)
    return result
