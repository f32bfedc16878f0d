"""`msa doctor`: what this machine has for each way of running the platform, with Debian/Ubuntu hints.

Only local facts: versions from the tools themselves, no Docker engine needed, no network.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Check", "PUBLISHED_PORTS", "checks", "run"]

PUBLISHED_PORTS = (8080, 8081, 8888, 8090, 9411)


@dataclass(frozen=True)
class Check:
    name: str
    used_by: str
    status: str  # "ok", "missing" or "in use"
    detail: str
    hint: str = ""


def _version(argv: list[str]) -> str | None:
    """The tool's first output line, or None when it is not on PATH or fails."""
    path = shutil.which(argv[0])
    if path is None:
        return None
    try:
        done = subprocess.run([path, *argv[1:]], capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else path


def _tool(name: str, argv: list[str], used_by: str, hint: str) -> Check:
    found = _version(argv)
    if found:
        return Check(name, used_by, "ok", found[:60])
    absent = "not found on PATH" if shutil.which(argv[0]) is None else f"`{' '.join(argv)}` failed"
    return Check(name, used_by, "missing", absent, hint)


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info >= (3, 11)
    hint = "" if ok else "sudo apt-get install -y python3.11 (or: uv python install 3.11)"
    return Check("python 3.11+", "everything", "ok" if ok else "missing", version, hint)


def _java() -> Check:
    hint = "sudo apt-get install -y openjdk-17-jre-headless"
    found = _version(["java", "-version"])
    major = re.search(r'version "(\d+)(?:\.(\d+))?', found or "")
    number = int(major.group(2) if major and major.group(1) == "1" else major.group(1)) if major else 0
    if number >= 17:
        return Check("java 17+", "Zipkin (tests, dev up --zipkin)", "ok", found or "")
    return Check("java 17+", "Zipkin (tests, dev up --zipkin)", "missing", found or "not found on PATH", hint)


def _zipkin_jar(jar: Path) -> Check:
    if jar.is_file():
        return Check("zipkin jar", "tests, dev up --zipkin", "ok", str(jar))
    return Check(
        "zipkin jar", "tests, dev up --zipkin", "missing", str(jar), "bash scripts/test.sh fetches it"
    )


def _chromium() -> Check:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return Check("chromium", "browser tests", "ok", path)
    return Check(
        "chromium", "browser tests", "missing", "not found on PATH", "sudo apt-get install -y chromium"
    )


def _port(port: int) -> Check:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            hint = "something listens there (a running platform?); msa dev up --free-ports avoids it"
            return Check(f"port {port}", "compose, dev up", "in use", "127.0.0.1", hint)
    return Check(f"port {port}", "compose, dev up", "ok", "free on 127.0.0.1")


def checks(zipkin_jar: Path) -> list[Check]:
    return [
        _python(),
        _tool(
            "uv",
            ["uv", "--version"],
            "dev up, tests",
            "curl -LsSf https://astral.sh/uv/install.sh | sh (or: pipx install uv)",
        ),
        _tool(
            "redis-server",
            ["redis-server", "--version"],
            "dev up, tests",
            "sudo apt-get install -y redis-server",
        ),
        _java(),
        _zipkin_jar(zipkin_jar),
        _tool("docker", ["docker", "--version"], "compose", "sudo apt-get install -y docker.io"),
        _tool(
            "docker compose v2",
            ["docker", "compose", "version"],
            "compose",
            "sudo apt-get install -y docker-compose-v2 (Docker's repo: docker-compose-plugin)",
        ),
        _chromium(),
        *(_port(port) for port in PUBLISHED_PORTS),
    ]


def _table(rows: list[Check]) -> str:
    cells = [("check", "status", "for", "found", "hint")]
    cells += [(c.name, c.status, c.used_by, c.detail, c.hint) for c in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)).rstrip()
        for row in cells
    )


def run(zipkin_jar: Path, *, strict: bool = False) -> int:
    rows = checks(zipkin_jar)
    print(_table(rows), flush=True)
    problems = [c.name for c in rows if c.status != "ok"]
    print(
        f"\n{len(rows) - len(problems)}/{len(rows)} ok"
        + (f"; not ok: {', '.join(problems)}" if problems else "")
    )
    return 1 if strict and problems else 0
