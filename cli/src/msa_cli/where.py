"""Where the running platform answers: what `msa demo` and `msa load` address when not told.

In this order:
1. what a running `msa dev up` wrote (``var/dev/urls.json``; ignored once its process is gone);
2. the ports `docker compose` published for this checkout's project (``COMPOSE_PROJECT_NAME``
   chooses another project, as it does for compose itself);
3. the ports docker-compose.yml publishes, on localhost.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from msa_cli.compose import compose_cli

__all__ = ["Urls", "find_urls", "forget_dev_urls", "write_dev_urls"]

URLS_FILE = "urls.json"
# service -> the port it listens on in its container (what `docker compose port` is asked)
_PUBLISHED = {"web": ("gateway-web", 8000), "mobile": ("gateway-mobile", 8000),
              "dashboard": ("ops-dashboard", 8000), "zipkin": ("zipkin", 9411)}  # fmt: skip


@dataclass(frozen=True)
class Urls:
    web: str = "http://localhost:8080"
    mobile: str = "http://localhost:8081"
    dashboard: str = "http://localhost:8090"
    zipkin: str = "http://localhost:9411"


def write_dev_urls(state_dir: Path, urls: Urls) -> None:
    """Called by `msa dev up` once its services have their ports."""
    record = {"pid": os.getpid(), **asdict(urls)}
    (state_dir / URLS_FILE).write_text(json.dumps(record, indent=2) + "\n")


def forget_dev_urls(state_dir: Path) -> None:
    """Called by `msa dev up` as it stops: removes what it wrote, never another run's file (a second
    `msa dev up` in the same checkout that failed to start must not hide the first)."""
    try:
        if json.loads((state_dir / URLS_FILE).read_text()).get("pid") == os.getpid():
            (state_dir / URLS_FILE).unlink()
    except (OSError, ValueError, AttributeError):
        pass


def find_urls(root: Path, state_dir: Path) -> tuple[Urls, str]:
    """The platform's addresses, and where they were found (said to the user)."""
    dev = _dev_urls(state_dir)
    if dev is not None:
        return dev, f"msa dev up ({state_dir / URLS_FILE})"
    published = _compose_urls(root)
    if published is not None:
        return published, "docker compose port"
    return Urls(), "the default ports (nothing found running)"


def _dev_urls(state_dir: Path) -> Urls | None:
    try:
        record = json.loads((state_dir / URLS_FILE).read_text())
        os.kill(int(record.pop("pid")), 0)  # raises when that `msa dev up` has exited
        return Urls(**record)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _compose_urls(root: Path) -> Urls | None:
    """The gateways' published ports, if this project's containers run (zipkin's may not)."""
    try:
        command = compose_cli()
    except (OSError, subprocess.TimeoutExpired):
        return None
    if command is None:
        return None
    found: dict[str, str] = {}
    for field, (service, port) in _PUBLISHED.items():
        try:
            answer = subprocess.run(
                [*command, "port", service, str(port)],
                cwd=root, capture_output=True, text=True, timeout=20, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None
        address = answer.stdout.strip().splitlines()[0] if answer.stdout.strip() else ""
        if answer.returncode == 0 and ":" in address:
            host, _, published = address.rpartition(":")
            host = "localhost" if host in ("0.0.0.0", "::", "[::]") else host
            found[field] = f"http://{host}:{published}"
    if "web" not in found or "mobile" not in found:
        return None
    return Urls(**found)
