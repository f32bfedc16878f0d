"""Fault injection by configuration, end to end: a commit of ``chaos.error_rate: 1.0`` to the config
repository breaks every domain service's API (health stays up), and reverting it heals them, in the
same processes (no restart)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from msa_testing.fixtures import REPO, Topology

pytestmark = pytest.mark.system

SP = "deploy/config-repo"
# An API route of each service that needs no token (orders answers 401 there when healthy:
# the chaos dependency runs before authentication).
PROBES = {
    "catalog": ("/products?size=1", 200),
    "inventory": ("/stock/p-1001", 200),
    "reviews": ("/summaries?product_ids=p-1001", 200),
    "orders": ("/orders", 401),
}


def git(repo: Path, *args: str) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.org",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.org",
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, timeout=30)


def commit_chaos(repo: Path, error_rate: float) -> None:
    """Replace the ``chaos:`` block of each domain service's file and commit."""
    for service in PROBES:
        path = repo / SP / f"{service}.yml"
        lines, in_chaos = [], False
        for line in path.read_text().splitlines():
            if line.startswith("chaos:"):
                in_chaos = True
            elif not (in_chaos and line.startswith((" ", "\t"))):
                in_chaos = False
                lines.append(line)
        path.write_text("\n".join([*lines, "chaos:", f"  error_rate: {error_rate}", ""]))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"chaos.error_rate {error_rate}")


def wait_until(what: str, check: Callable[[], bool], timeout_s: float = 30.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def status(topo: Topology, service: str) -> int:
    path, _ = PROBES[service]
    return httpx.get(f"{topo.url(service)}{path}", timeout=5).status_code


def test_a_chaos_commit_breaks_and_a_revert_heals_without_restart(
    make_topology: Callable[..., Topology], tmp_path: Path
) -> None:
    repo = tmp_path / "config-repo"
    shutil.copytree(REPO / SP, repo / SP)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    topo = make_topology(
        only={"config-service", *PROBES},
        env={"config-service": {"CONFIG_REPO_URI": str(repo), "CONFIG_SEARCH_PATHS": SP}},
    )
    pids = {service: topo.service(service).process.pid for service in PROBES}  # type: ignore[union-attr]
    for service, (_, healthy) in PROBES.items():
        assert status(topo, service) == healthy, service

    commit_chaos(repo, 1.0)
    for service in PROBES:
        delay = wait_until(f"{service} to fail", lambda s=service: status(topo, s) == 500)  # type: ignore[misc]
        print(f"\n{service}: answering 500 (waited {delay:.1f} s more)")
        assert httpx.get(f"{topo.url(service)}/health/ready", timeout=5).status_code == 200

    commit_chaos(repo, 0.0)
    for service, (_, healthy) in PROBES.items():
        wait_until(f"{service} to heal", lambda s=service, h=healthy: status(topo, s) == h)  # type: ignore[misc]
    assert {s: topo.service(s).process.pid for s in PROBES} == pids  # type: ignore[union-attr]
