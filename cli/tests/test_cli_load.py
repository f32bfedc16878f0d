"""`msa load` runs web and mobile users against the running topology, bounded, and prints a
summary table with zero failures; with nothing listening it says what to do. The compose profile
`load` runs the same command inside the compose network (tests/containers/test_load.py runs it)."""

from __future__ import annotations

import json
import subprocess

from msa_cli.compose import load_compose
from msa_cli.devstack import free_port
from msa_testing.containers import PINNED_COMPOSE
from msa_testing.fixtures import REPO, Topology
from msa_testing.load import load_args, run_load, summary


def test_load_runs_web_and_mobile_users_without_a_failure(topology: Topology) -> None:
    web, mobile = topology.url("gateway-web"), topology.url("gateway-mobile")
    done = run_load(web, mobile, users=5, duration_s=8)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    for column in ("request", "reqs", "fails", "p50 ms", "p95 ms", "req/s"):
        assert column in done.stdout, column
    rows = summary(done.stdout)
    requests, failures = rows["total"]
    assert failures == 0
    assert requests >= 10, "5 users for 8 s, a step every 0.5-2 s"
    assert requests == sum(r for name, (r, _) in rows.items() if name != "total")
    assert any(name.split()[1] == "web" and r for name, (r, _) in rows.items() if name != "total")
    assert any(name.split()[1] == "mobile" and r for name, (r, _) in rows.items() if name != "total")
    assert "msa load: no request failed." in done.stdout


def test_load_says_how_to_start_the_platform_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        load_args(url, url, users=2, duration_s=5), capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode != 0
    assert f"gateway-web at {url} is not reachable" in done.stderr
    assert "docker compose up, or uv run msa dev up" in done.stderr
    assert "p95 ms" not in done.stdout


def test_the_compose_profile_load_runs_msa_load_in_the_compose_network() -> None:
    """`docker compose --profile load up` adds it; a plain `up` (and `msa dev up`) leaves it out."""
    compose = [str(PINNED_COMPOSE), "--project-directory", str(REPO)]
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}  # the file and .env decide, not this shell
    with_profile = subprocess.run(
        [*compose, "--profile", "load", "config", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    load = json.loads(with_profile.stdout)["services"]["load"]
    assert load["build"]["args"]["SERVICE"] == "msa-cli"
    assert load["command"][:2] == ["msa", "load"]
    assert "http://gateway-web:8000" in load["command"]
    assert "http://gateway-mobile:8000" in load["command"]
    assert set(load["depends_on"]) == {"gateway-web", "gateway-mobile"}
    assert load["restart"] == "no"
    default = subprocess.run(
        [*compose, "config", "--services"], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    assert "load" not in default.stdout.split()
    assert "load" not in load_compose(REPO / "docker-compose.yml")
