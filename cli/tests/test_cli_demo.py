"""`msa demo` walks through the running topology and exits 0; with nothing listening it says what to do."""

from __future__ import annotations

import subprocess
import sys

from msa_cli.devstack import free_port
from msa_testing.fixtures import Topology


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "msa_cli.main", "demo", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_demo_walks_through_the_running_platform(topology: Topology) -> None:
    zipkin = topology.zipkin_url
    assert zipkin
    done = _demo(
        "--web",
        topology.url("gateway-web"),
        "--mobile",
        topology.url("gateway-mobile"),
        "--dashboard",
        topology.url("ops-dashboard"),
        "--zipkin",
        zipkin,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in (
        "-> GET /api/products?size=3  200",
        "-> POST /auth/login  200",
        "-> POST /api/orders  201",
        "-> POST /api/orders  200",
        "replayed:",
        "Idempotent-Replayed: true",
        "-> POST /auth/token  200",
        "next_cursor:",
        "-> POST /auth/refresh  401",
        "refused (401)",
        f"{zipkin}/zipkin/traces/",
        f"ops dashboard: {topology.url('ops-dashboard')}",
        "demo complete.",
    ):
        assert line in out, line
    assert "mobile " in out
    assert "ratio " in out
    assert "spans from " in out, "the trace id we sent reached Zipkin"


def test_demo_says_how_to_start_the_platform_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = _demo("--web", url, "--mobile", url)
    assert done.returncode != 0
    assert "not reachable" in done.stderr
    assert "docker compose up, or uv run msa dev up" in done.stderr
