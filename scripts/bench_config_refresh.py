"""Commit-to-service delay of a config change: config-service + catalog as real processes.

Makes a throwaway Git repository, starts redis-server, config-service (default 2 s polling) and
a catalog, then commits N changes (each at a random point of the poll cycle) to catalog.yml and times each until catalog's /ops/config shows
the new value. Prints every sample and the median, p90 and max.

    uv run python scripts/bench_config_refresh.py [--commits 10] [--poll 2.0]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from chassis.ops import DEV_OPS_TOKEN, operator_headers
from msa_cli.devstack import free_port

BIN = Path(sys.executable).parent
SP = "deploy/config-repo"
GIT_ENV = {
    "PATH": os.environ.get("PATH", ""),
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.org",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.org",
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True, capture_output=True, timeout=30)


def commit(repo: Path, timeout_s: float) -> None:
    (repo / SP / "catalog.yml").write_text(f"http:\n  timeout_s: {timeout_s}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"timeout {timeout_s}")


def wait(url: str, check: object, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            # /ops/config needs the operator token: the processes run with the development default
            response = httpx.get(url, headers=operator_headers(DEV_OPS_TOKEN), timeout=2)
            if response.status_code == 200 and (
                check is None or response.json()["settings"]["http.timeout_s"] == check
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--poll", type=float, default=2.0, help="CONFIG_POLL_INTERVAL_S of config-service")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-config-"))
    repo = work / "repo"
    (repo / SP).mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    commit(repo, 1.0)
    redis_port, config_port, catalog_port = free_port(), free_port(), free_port()
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "HOST": "127.0.0.1"}
    base["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    base["ZIPKIN_ENDPOINT"] = f"http://127.0.0.1:{free_port()}/api/v2/spans"
    procs = [
        subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
    ]
    try:
        with (work / "config-service.log").open("wb") as log:
            env = {**base, "PORT": str(config_port), "CONFIG_REPO_URI": str(repo), "CONFIG_SEARCH_PATHS": SP}
            env["CONFIG_POLL_INTERVAL_S"] = str(args.poll)
            procs.append(subprocess.Popen([str(BIN / "config-service")], env=env, stdout=log, stderr=log))
        wait(f"http://127.0.0.1:{config_port}/health/live", None)
        with (work / "catalog.log").open("wb") as log:
            env = {**base, "PORT": str(catalog_port), "CONFIG_SERVICE_URL": f"http://127.0.0.1:{config_port}"}
            env.update(CONFIG_CACHE_DIR=str(work / "cache"), DATA_DIR=str(work / "data"))
            procs.append(subprocess.Popen([str(BIN / "catalog")], env=env, stdout=log, stderr=log))
        ops = f"http://127.0.0.1:{catalog_port}/ops/config"
        wait(ops, 1.0)
        samples = []
        for i in range(args.commits):
            time.sleep(random.uniform(0, args.poll))  # commit at a random phase of the poll cycle
            value = round(1.1 + i / 100, 2)
            started = time.monotonic()
            commit(repo, value)
            wait(ops, value)
            samples.append(time.monotonic() - started)
            print(f"commit {i + 1:2d}: {samples[-1]:.2f} s")
        ordered = sorted(samples)
        p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
        print(
            f"commit-to-service delay over {len(samples)} commits (poll {args.poll} s): "
            f"median {statistics.median(samples):.2f} s, p90 {p90:.2f} s, max {max(samples):.2f} s"
        )
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(15)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
