"""One replica of a caller, in its own process, for the shared-breaker tests and benchmark: a
chassis ``Downstream`` to ``server_url`` whose breaker state is shared through ``redis_url``
(``BreakerRegistry.share`` running), driven by one command per line on stdin, one JSON answer
per line on stdout::

    call                   -> {"outcome": "ok" | "failure" | "timeout" | "short_circuited"}
    calls <n>              -> {"outcome": "ok", "n": n} after n sequential calls (stops at the first error)
    state                  -> {"state": "closed", "fails": 0, "opened_at": null}
    wait <state> <secs>    -> {"state": ..., "seen_at": <time.time() when first seen>} (or "timeout")

    python -m msa_testing.breaker_replica <redis_url> <server_url> [resync_s]

``Replica`` starts and drives one such process (the tests and ``scripts/bench_breaker.py``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import redis

from chassis import BreakerRegistry, Downstream, DownstreamUnavailable, LiveSettings, ServiceSettings

FAIL_MAX = 3


class Replica:
    """One ``msa_testing.breaker_replica`` process, driven over stdin/stdout."""

    def __init__(self, redis_url: str, server_url: str, resync_s: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "msa_testing.breaker_replica", redis_url, server_url, str(resync_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,  # its breaker's transition log; shown if it exits early
            text=True,
        )

    def ready(self) -> None:
        if self.read() != {"ready": True}:
            raise RuntimeError("replica did not start")

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            _, err = self.process.communicate(timeout=10)
            raise RuntimeError(f"replica exited ({self.process.returncode}): {err[-2000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, command: str) -> dict[str, Any]:
        self.send(command)
        return self.read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=10)  # and closes our ends of its pipes


async def _answer(client: Downstream, line: str) -> dict[str, Any]:
    command, *args = line.split()
    if command in {"call", "calls"}:
        n = int(args[0]) if args else 1
        for _ in range(n):
            try:
                await client.get_json("/x")
            except DownstreamUnavailable as exc:
                return {"outcome": exc.reason}
        return {"outcome": "ok", "n": n}
    storage = client.breaker.storage
    if command == "state":
        opened = storage.opened_at if storage is not None else None
        return {
            "state": client.breaker.state,
            "fails": storage.counter if storage is not None else None,
            "opened_at": opened.timestamp() if opened else None,
        }
    if command == "wait":
        wanted, deadline = args[0], time.monotonic() + float(args[1])
        while time.monotonic() < deadline:
            if client.breaker.state == wanted:
                return {"state": wanted, "seen_at": time.time()}
            await asyncio.sleep(0.0005)  # the loop runs the subscriber meanwhile
        return {"state": client.breaker.state, "timeout": True}
    return {"error": f"unknown command {command!r}"}


async def main(redis_url: str, server_url: str, resync_s: float) -> None:
    settings = ServiceSettings.load(
        remote={"breaker.fail_max": FAIL_MAX, "breaker.reset_timeout_s": 30, "http.timeout_s": 0.5},
        service_name="caller",
        redis_url=redis_url,
        zipkin_endpoint=None,
    )
    registry = BreakerRegistry()
    client = Downstream(
        caller="caller",
        callee="callee",
        base_url=server_url,
        live=LiveSettings(settings),
        registry=registry,
        breaker_redis=redis.Redis.from_url(redis_url, socket_timeout=0.1, socket_connect_timeout=0.1),
    )
    sharing = asyncio.create_task(registry.share(redis_url, resync_s=resync_s))
    await asyncio.wait_for(registry.shared.wait(), 10)  # listening, and its first read is done
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True}), flush=True)
    try:
        while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            print(json.dumps(await _answer(client, line)), flush=True)
    finally:
        sharing.cancel()
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 1.0))
