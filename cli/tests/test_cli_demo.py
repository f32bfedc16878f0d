"""`msa demo` walks through the running topology and exits 0; with nothing listening it says what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from msa_cli.devstack import free_port
from msa_cli.where import Urls, write_dev_urls
from msa_testing.fixtures import Topology


def _demo(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "msa_cli.main", "demo", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=cwd,
    )


def test_demo_finds_the_running_platform_and_walks_through_it(topology: Topology, tmp_path: Path) -> None:
    """No URL given: the demo reads them where a running `msa dev up` writes them (a checkout's
    var/dev/urls.json, valid while the process that wrote it lives: here, this test's)."""
    zipkin = topology.zipkin_url
    assert zipkin
    (tmp_path / "docker-compose.yml").write_text("services: {}\n")  # a checkout, with nothing in compose
    (tmp_path / "var" / "dev").mkdir(parents=True)
    urls = Urls(
        web=topology.url("gateway-web"),
        mobile=topology.url("gateway-mobile"),
        dashboard=topology.url("ops-dashboard"),
        zipkin=zipkin,
    )
    write_dev_urls(tmp_path / "var" / "dev", urls)
    done = _demo(cwd=tmp_path)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in (
        f"platform: web {urls.web}, mobile {urls.mobile} (from msa dev up",
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
        f"{topology.url('gateway-web')}/",
        f"{topology.url('ops-dashboard')}/",
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
