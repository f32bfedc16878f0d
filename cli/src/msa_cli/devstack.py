"""Runs the docker-compose.yml topology as local processes (`msa dev up`, and the system tests).

Every service built from this repository starts with what its image runs (the console script its
``SERVICE`` build arg names, unless compose sets ``command:``) and the environment compose gives
it, with compose host names rewritten to local addresses. Redis is a
private redis-server; Zipkin is used when reachable (or started from its jar); the ELK services are
compose-only, so their addresses become empty and the services log to stdout alone.

Like compose's ``restart: unless-stopped``, ``supervise()`` starts a service that exited again,
after a delay that doubles while it keeps exiting; a service stopped on purpose stays stopped.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from msa_cli.compose import ComposeError, ComposeService, load_compose

__all__ = ["DevStack", "DevStackError", "LocalService", "free_port"]

# Variables a child inherits from the caller; everything else comes from compose, as in a container.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "SYSTEMROOT", "TZ")


class DevStackError(RuntimeError):
    """The local topology cannot start; the message says why and what to do."""


# Ports handed out by free_port() in this process: never the same one twice.
_HANDED_OUT: set[int] = set()
_FALLBACK_EPHEMERAL = (32768, 60999)  # Linux's default; macOS and Windows start at 49152


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _FALLBACK_EPHEMERAL


def zipkin_settings(compose_file: Path) -> tuple[list[str], dict[str, str]]:
    """JVM options and storage settings for a Zipkin run from its jar: compose's ``JAVA_OPTS``,
    ``STORAGE_TYPE`` and ``MEM_MAX_SPANS`` (not its Kibana link: no Kibana runs with the jar).

    The heap and the span count it holds go together: Zipkin's own default of 500,000 spans
    outgrows a 256 MiB heap, and the JVM exits."""
    try:
        zipkin = load_compose(compose_file)["zipkin"]
    except (ComposeError, KeyError) as exc:
        raise DevStackError(f"{compose_file}: no zipkin service to take its settings from ({exc})") from exc
    env = zipkin.environment
    storage: dict[str, str] = {key: env[key] for key in ("STORAGE_TYPE", "MEM_MAX_SPANS") if key in env}
    return env.get("JAVA_OPTS", "").split(), storage


def free_port() -> int:
    """A free loopback port for a server that binds it a moment later.

    Taken below the kernel's ephemeral range: a port from ``bind(0)`` is one the kernel also hands
    to outgoing connections, and a busy test run (hundreds of connections a second) took one between
    this check and the server's bind (``address already in use``). Ports below the range are only
    ever taken by a server that binds them on purpose."""
    low = min(_ephemeral_range()[0], _FALLBACK_EPHEMERAL[0])
    candidates = range(15000, low) if low > 16000 else range(0)  # a tuned range may leave no room
    for _ in range(200 if candidates else 0):
        port = random.choice(candidates)
        if port not in _HANDED_OUT and _port_free(port):
            _HANDED_OUT.add(port)
            return port
    with socket.socket() as sock:  # everything tried was taken: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


@dataclass
class LocalService:
    name: str
    spec: ComposeService
    port: int
    command: list[str]
    env: dict[str, str]
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # time.monotonic() of the last start
    restart_delay_s: float = 0.0  # the delay before the last restart; 0 = none yet
    restart_due: float | None = None  # when supervise() starts it again, once it exited
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        return self.url + (self.spec.health_path or "/health/ready")


@dataclass
class DevStack:
    compose_file: Path
    state_dir: Path
    free_ports: bool = False
    redis_url: str | None = None  # an existing Redis; else a private redis-server is started
    zipkin_url: str | None = None  # e.g. http://127.0.0.1:9411; else probed on :9411
    zipkin_jar: Path | None = None  # start Zipkin from this jar when none is reachable
    only: set[str] | None = None  # run a subset (with nothing else implied)
    env_overrides: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # service -> env; "*" = all
    # supervise(): first restart delay, its ceiling, and how long a run must last to count as healthy
    # again (compose's engine doubles from 100 ms up to a minute and resets after 10 s)
    restart_initial_s: float = 1.0
    restart_max_s: float = 30.0
    restart_stable_s: float = 10.0
    services: dict[str, LocalService] = field(default_factory=dict, init=False)
    _infra: list[subprocess.Popen[bytes]] = field(default_factory=list, init=False)

    # ---- planning ------------------------------------------------------------------------------
    def plan(self) -> dict[str, LocalService]:
        try:
            compose = load_compose(self.compose_file)
        except ComposeError as exc:
            raise DevStackError(f"{self.compose_file}: {exc}") from exc
        root = self.compose_file.parent
        local = [s for s in compose.values() if s.built_here and (self.only is None or s.name in self.only)]
        ports = {s.name: self._port_for(s) for s in local}
        addresses: dict[str, str | None] = dict.fromkeys(compose)  # not run locally -> None
        addresses.update({name: f"127.0.0.1:{port}" for name, port in ports.items()})
        if self.redis_url:
            redis = urlsplit(self.redis_url)
            addresses["redis"] = f"{redis.hostname}:{redis.port or 6379}"
        if self.zipkin_url:
            addresses["zipkin"] = urlsplit(self.zipkin_url).netloc
        logs = self.state_dir / "logs"
        for spec in _in_start_order(local):
            env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
            mounts = self._mounts(spec, root)
            for key, value in spec.environment.items():
                env[key] = _localize(_remap_paths(value, mounts), addresses, bare_hosts=_names_host(key))
            # Each container has a /tmp of its own; so does each local process.
            tmp = self.state_dir / "tmp" / spec.name
            tmp.mkdir(parents=True, exist_ok=True)
            env.update(
                {
                    "HOST": "127.0.0.1",
                    "PORT": str(ports[spec.name]),
                    "PYTHONUNBUFFERED": "1",
                    "TMPDIR": str(tmp),
                }
            )
            env.update(self.env_overrides.get("*", {}))
            env.update(self.env_overrides.get(spec.name, {}))
            command = _command(spec)
            self.services[spec.name] = LocalService(
                name=spec.name,
                spec=spec,
                port=ports[spec.name],
                command=[_executable(command[0]), *command[1:]],
                env=env,
                log_file=logs / f"{spec.name}.log",
            )
        return self.services

    def _port_for(self, spec: ComposeService) -> int:
        if spec.published_port and not self.free_ports:
            return spec.published_port
        return free_port()

    def _mounts(self, spec: ComposeService, root: Path) -> list[tuple[str, str]]:
        """(container path, local path) for each volume: binds resolve in the repo, named volumes
        become folders under the state directory."""
        mounts = []
        for source, target in spec.volumes:
            if source.startswith((".", "/")):
                local = (root / source).resolve()
            else:
                local = (
                    self.state_dir / "volumes" / spec.name / (source or target.strip("/").replace("/", "_"))
                )
                local.mkdir(parents=True, exist_ok=True)
            mounts.append((target.split(":")[0], str(local)))
        return mounts

    # ---- running -------------------------------------------------------------------------------
    def start(self) -> None:
        if not self.services:
            self.plan()
        self._ensure_redis()
        self._ensure_zipkin()
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        for name in self.services:
            self.start_service(name)

    def start_service(self, name: str) -> None:
        service = self.services[name]
        if service.process and service.process.poll() is None:
            return
        log = service.log_file.open("ab")
        try:
            service.process = subprocess.Popen(
                service.command,
                env=service.env,
                cwd=self.compose_file.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: we stop it and all it spawned
            )
        finally:
            log.close()
        service.started_at = time.monotonic()
        service.restart_due = None

    def stop_service(self, name: str, timeout_s: float = 10.0) -> None:
        service = self.services[name]
        if service.process is not None:
            _terminate(service.process, timeout_s)
            service.process = None  # stopped on purpose: supervise() leaves it alone
        service.restart_due = None

    def supervise(self, now: float | None = None) -> list[str]:
        """Call it every so often (``msa dev up`` does, twice a second): a service that exited is
        scheduled for a restart and started again when its delay is over. The delay doubles from
        ``restart_initial_s`` up to ``restart_max_s`` while the service keeps exiting, and starts
        over once a run lasted ``restart_stable_s``. Returns what happened, one line each."""
        now = time.monotonic() if now is None else now
        messages = []
        for service in self.services.values():
            process = service.process
            if process is None or process.poll() is None:
                continue  # stopped on purpose, or running
            if service.restart_due is None:
                crashed_soon = (
                    service.restart_delay_s > 0 and now - service.started_at < self.restart_stable_s
                )
                service.restart_delay_s = (
                    min(service.restart_delay_s * 2, self.restart_max_s)
                    if crashed_soon
                    else self.restart_initial_s
                )
                service.restart_due = now + service.restart_delay_s
                again = " again" if crashed_soon else ""
                messages.append(
                    f"{service.name} exited{again} ({_exit_status(process.returncode)}); restarting in "
                    f"{service.restart_delay_s:.1f} s. Log: {service.log_file}"
                )
            elif now >= service.restart_due:
                service.process = None
                try:
                    self.start_service(service.name)
                except OSError as exc:  # could not even spawn it: keep the exited process, try later
                    service.process = process
                    service.restart_delay_s = min(max(service.restart_delay_s, 0.1) * 2, self.restart_max_s)
                    service.restart_due = now + service.restart_delay_s
                    messages.append(
                        f"{service.name} could not be started ({exc}); trying again in "
                        f"{service.restart_delay_s:.1f} s"
                    )
                    continue
                service.restarts += 1
                messages.append(f"{service.name} restarted (restart {service.restarts})")
        return messages

    def wait_ready(self, names: Iterable[str] | None = None, timeout_s: float = 60.0) -> None:
        pending = set(names or self.services)
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while pending:
                for name in sorted(pending):
                    service = self.services[name]
                    if service.process is None or service.process.poll() is not None:
                        raise DevStackError(f"{name} exited before it was ready:\n{_tail(service.log_file)}")
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(service.health_url).status_code == 200:
                            pending.discard(name)
                if pending and time.monotonic() > deadline:
                    details = "\n".join(
                        f"--- {n}\n{_tail(self.services[n].log_file)}" for n in sorted(pending)
                    )
                    raise DevStackError(
                        f"not ready after {timeout_s:.0f}s: {', '.join(sorted(pending))}\n{details}"
                    )
                if pending:
                    time.sleep(0.2)

    def stop(self) -> None:
        for name in reversed(list(self.services)):
            self.stop_service(name)
        for process in reversed(self._infra):
            _terminate(process, 10.0)
        self._infra.clear()

    def url(self, name: str) -> str:
        return self.services[name].url

    # ---- infrastructure ------------------------------------------------------------------------
    def _ensure_redis(self) -> None:
        if self.redis_url:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise DevStackError(
                "redis-server is not installed. Install it (Debian/Ubuntu: sudo apt-get install -y redis-server; "
                "macOS: brew install redis) or pass --redis-url."
            )
        port = free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._infra.append(process)
        _wait_port(port, 10.0, "redis-server")
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        self._readdress("redis", f"127.0.0.1:{port}")

    def _ensure_zipkin(self) -> None:
        if self.zipkin_url:
            return
        candidate = "http://127.0.0.1:9411"
        if _reachable(candidate + "/health"):
            self.zipkin_url = candidate
        elif self.zipkin_jar is not None:
            java = shutil.which("java")
            if java is None:
                raise DevStackError("--zipkin needs Java 17+ on PATH")
            if not self.zipkin_jar.exists():
                raise DevStackError(
                    f"no Zipkin jar at {self.zipkin_jar}: `bash scripts/test.sh` fetches it, or run "
                    "mvn dependency:copy -Dartifact=io.zipkin:zipkin-server:3.6.1:jar:exec "
                    f"-DoutputDirectory={self.zipkin_jar.parent}"
                )
            # Zipkin's own port when free: trace links (dashboard, README) point at :9411.
            port = 9411 if _port_free(9411) and not self.free_ports else free_port()
            log = (self.state_dir / "logs").joinpath("zipkin.log")
            log.parent.mkdir(parents=True, exist_ok=True)
            jvm_options, zipkin_env = zipkin_settings(self.compose_file)
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [java, *jvm_options, "-jar", str(self.zipkin_jar), f"--server.port={port}"],
                    env={**os.environ, **zipkin_env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._infra.append(process)
            _wait_http(f"http://127.0.0.1:{port}/health", 90.0, "zipkin")
            self.zipkin_url = f"http://127.0.0.1:{port}"
        else:
            return
        self._readdress("zipkin", urlsplit(self.zipkin_url).netloc)

    def _readdress(self, host: str, address: str) -> None:
        """Point every planned environment at an address known only once infrastructure started."""
        for service in self.services.values():
            for key, value in service.spec.environment.items():
                if _mentions(value, host, bare_hosts=_names_host(key)):
                    service.env[key] = _localize(
                        value, {host: address}, keep_unknown=True, bare_hosts=_names_host(key)
                    )
            service.env.update(self.env_overrides.get("*", {}))
            service.env.update(self.env_overrides.get(service.name, {}))


def _command(spec: ComposeService) -> list[str]:
    """compose's ``command:`` when set, else what the image runs: the root Dockerfile's CMD is the
    ``service`` link to the console script its ``COMMAND`` build arg names, else ``SERVICE``."""
    if spec.command:
        return spec.command
    script = spec.build_args.get("COMMAND") or spec.build_args.get("SERVICE")
    if not script:
        raise DevStackError(
            f"{spec.name}: docker-compose.yml gives it neither a command nor a SERVICE build arg "
            "(the workspace member whose console script the image runs)"
        )
    return [script]


def _in_start_order(services: list[ComposeService]) -> list[ComposeService]:
    """Dependencies first (compose depends_on), stable otherwise."""
    by_name = {s.name: s for s in services}
    ordered: list[ComposeService] = []
    seen: set[str] = set()

    def visit(service: ComposeService) -> None:
        if service.name in seen:
            return
        seen.add(service.name)
        for dep in service.depends_on:
            if dep in by_name:
                visit(by_name[dep])
        ordered.append(service)

    for service in services:
        visit(service)
    return ordered


def _names_host(key: str) -> bool:
    """``LOGSTASH_HOST``: a variable whose bare value is a host. Elsewhere a bare value that
    happens to be a service name (``CONFIG_CLIENT_USER: catalog``) is just a name."""
    return key.upper().endswith(("_HOST", "_HOSTS"))


def _mentions(value: str, host: str, bare_hosts: bool = True) -> bool:
    return _localize(value, {host: "x:1"}, bare_hosts=bare_hosts) != value


def _localize(
    value: str, addresses: Mapping[str, str | None], keep_unknown: bool = False, bare_hosts: bool = True
) -> str:
    """Rewrite compose host names in a value to local addresses: a bare host (when
    ``bare_hosts``), a URL, or a list of them (``a,b`` or ``name=url,name=url``). A host that does
    not run locally becomes "" (the service then disables that integration)."""
    if "," in value:
        return ",".join(_localize(item, addresses, keep_unknown, bare_hosts) for item in value.split(","))
    if "=" in value and "://" in value.split("=", 1)[1]:
        name, url = value.split("=", 1)
        return f"{name}={_localize(url, addresses, keep_unknown, bare_hosts)}"
    if bare_hosts and value in addresses:
        address = addresses[value]
        return address.rsplit(":", 1)[0] if address else ""
    if "://" not in value:
        return value
    parts = urlsplit(value)
    if parts.hostname is None or parts.hostname not in addresses:
        return value
    address = addresses[parts.hostname]
    if address is None:
        return value if keep_unknown else ""
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=userinfo + address))


def _remap_paths(value: str, mounts: list[tuple[str, str]]) -> str:
    for target, local in mounts:
        if value == target or value.startswith(target.rstrip("/") + "/"):
            return local + value[len(target.rstrip("/")) :]
    return value


def _executable(name: str) -> str:
    """Console scripts live next to the running interpreter (the workspace venv)."""
    if os.sep in name:
        return name
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise DevStackError(f"command {name!r} not found: run `uv sync --all-packages` first")
    return found


def _terminate(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def _exit_status(returncode: int) -> str:
    if returncode < 0:  # Popen's way of saying a signal ended it
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
    return f"code {returncode}"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait_port(port: int, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise DevStackError(f"{what} did not listen on {port} within {timeout_s:.0f}s")


def _wait_http(url: str, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _reachable(url):
            return
        time.sleep(0.5)
    raise DevStackError(f"{what} did not answer {url} within {timeout_s:.0f}s")


def _reachable(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code < 500
    except httpx.HTTPError:
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
