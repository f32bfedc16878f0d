"""What the benchmark scripts share: wrk runs, per-process CPU from /proc, a span sink standing in
for Zipkin, and background processes stopped with the run."""

from __future__ import annotations

import dataclasses
import http.server
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from msa_cli.devstack import DevStack, free_port

__all__ = [
    "BELOW_CAPACITY",
    "NginxProxy",
    "background_process",
    "cpu_seconds",
    "nginx_proxy",
    "span_sink",
    "start_variant",
    "wait_ok",
    "wrk",
]

TICK_S = 1 / os.sysconf("SC_CLK_TCK")


# The benchmarks measure what a request costs below capacity: load shedding stays on, with the
# code's default limits (100 in flight at first, never under 50) rather than gateway-web's tighter
# ones from the config repository (20), which 16 connections plus one loop turn's answers can reach.
BELOW_CAPACITY = {"SHED__INITIAL_LIMIT": "100", "SHED__MIN_LIMIT": "50"}


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total * TICK_S


def wrk(url: str, connections: int, seconds: float) -> tuple[int, float, float | None]:
    """Requests completed, requests per second, and the p50 latency in ms."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"{url}: not every answer was a 2xx\n{out}")
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return done, rps, float(p50.group(1)) * scale[p50.group(2)] if p50 else None


@contextmanager
def span_sink() -> Iterator[str]:
    """Accepts span batches and drops them: the services pay for exporting, nobody for storing."""

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(202)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def wait_ok(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s} s")


def background_process(stack: ExitStack, command: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``command`` running in its own session until ``stack`` closes; output to ``log``."""
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()

    stack.callback(stop)
    return process


@dataclass
class NginxProxy:
    port: int
    pids: list[int]  # master and worker: whose CPU is the proxy's


def nginx_proxy(stack: ExitStack, state: Path, name: str, upstream_ports: Sequence[int]) -> NginxProxy | None:
    """Debian's nginx (when installed) proxying to these local ports, round-robin over kept-alive
    connections, until ``stack`` closes; None without nginx."""
    binary = shutil.which("nginx")
    if binary is None:
        return None
    port = free_port()
    home = state / f"nginx-{name}"
    home.mkdir(parents=True, exist_ok=True)
    servers = " ".join(f"server 127.0.0.1:{upstream};" for upstream in upstream_ports)
    conf = home / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
daemon off;
pid {home}/nginx.pid;
error_log {home}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {home}/body;
    proxy_temp_path {home}/proxy;
    upstream {name} {{ {servers} keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{name};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
    )
    master = background_process(stack, [binary, "-c", str(conf), "-p", str(home)], home / "nginx.log")
    for _ in range(100):  # the worker is forked once the config is read
        workers = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
        if workers:
            break
        time.sleep(0.05)
    return NginxProxy(port, [master.pid, *map(int, workers)])


def start_variant(stack: DevStack, service: str, name: str, env: dict[str, str]) -> int:
    """Another process of ``service`` in a running DevStack, with ``env`` on top of its own
    environment (a variant, or a second replica): returns its port once it is ready."""
    base = stack.services[service]
    port = free_port()
    stack.services[name] = dataclasses.replace(
        base,
        name=name,
        port=port,
        env={**base.env, "PORT": str(port), **env},
        log_file=base.log_file.with_name(f"{name}.log"),
        process=None,
    )
    stack.start_service(name)
    stack.wait_ready([name], timeout_s=60)
    return port
