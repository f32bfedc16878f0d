"""Real infrastructure for tests: redis-server, the Zipkin server and an Elasticsearch node, on
free loopback ports.

In CI (``MSA_STRICT=1``, set by .ci/run) missing infrastructure fails the test; on a laptop it
skips with a message saying what to install.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import psycopg
import pytest
import redis

from msa_cli.devstack import free_port, zipkin_settings
from msa_testing.workspace import REPO

__all__ = [
    "ELASTICSEARCH_VERSION",
    "ZIPKIN_VERSION",
    "ElasticsearchServer",
    "PostgresServer",
    "RedisServer",
    "ZipkinServer",
    "elasticsearch_zip",
    "require_infra",
    "start_elasticsearch",
    "start_postgres",
    "start_redis",
    "start_zipkin",
    "strict",
    "zipkin_jar",
]

ZIPKIN_VERSION = "3.6.1"
ELASTICSEARCH_VERSION = "8.15.3"  # .env ELASTIC_VERSION (tests/test_elasticsearch_real.py checks)
CACHE = Path(os.environ.get("MSA_CACHE_DIR", Path.home() / ".cache" / "msa-platform"))


def strict() -> bool:
    return os.environ.get("MSA_STRICT") == "1"


def require_infra(reason: str) -> NoReturn:
    """Missing infrastructure: a failure in CI, a skip elsewhere."""
    if strict():
        pytest.fail(f"required infrastructure missing (MSA_STRICT=1): {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def url_for(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start_redis(port: int | None = None) -> RedisServer:
    """A private redis-server on ``port`` (default: a free one; pass the old port to restart one)."""
    binary = shutil.which("redis-server")
    if binary is None:
        require_infra("redis-server not installed (apt-get install -y redis-server)")
    port = port or free_port()
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port, process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with server.client() as client:
                if client.ping():
                    return server
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


# ---- PostgreSQL ----------------------------------------------------------------------------------
#
# A throwaway cluster from the machine's PostgreSQL binaries (Debian: apt-get install -y postgresql),
# in a temporary folder, on a free port, with durability off (tests need speed, not crash safety).
# initdb refuses root, so as root (CI) the cluster runs as the ``postgres`` user Debian creates.


@dataclass
class PostgresServer:
    port: int
    process: subprocess.Popen[bytes]
    root: Path  # data folder and socket folder: removed by stop()
    command: list[str]
    _databases: int = 0

    def url_for(self, database: str, user: str = "postgres", password: str | None = None) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url_for("postgres"), autocommit=True)

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database; returns its URL."""
        self._databases += 1
        name = f"{prefix}_{self._databases}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def halt(self) -> None:
        """Stop the server, keeping its data: ``resume()`` starts it again on the same port."""
        # SIGINT is PostgreSQL's "fast" shutdown: sessions are cut, as in an outage. Sent to the
        # postmaster itself (its pid file says which), not to runuser in front of it.
        try:
            postmaster = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signal.SIGINT)
        except (OSError, ValueError, IndexError):
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def resume(self) -> None:
        with (self.root / "postgres.log").open("ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)
        _wait_accepting(self)

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.root, ignore_errors=True)


def _postgres_bin(name: str) -> Path | None:
    found = shutil.which(name)
    if found:
        return Path(found)
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return versions[-1] if versions else None


def start_postgres() -> PostgresServer:
    initdb, postgres = _postgres_bin("initdb"), _postgres_bin("postgres")
    if initdb is None or postgres is None:
        require_infra("PostgreSQL is not installed (apt-get install -y postgresql; brew install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="msa-postgres-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            require_infra("running as root needs the postgres user (Debian's postgresql package adds it)")
        os.chmod(root, 0o755)
        os.chown(sockets, owner.pw_uid, owner.pw_gid)
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = free_port()
    log_file = root / "postgres.log"
    command = [
        *as_user, str(postgres), "-D", str(data), "-p", str(port), "-k", str(sockets),
        "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
        "-c", "full_page_writes=off", "-c", "max_connections=200",
    ]  # fmt: skip
    with log_file.open("ab") as out:
        if as_user:
            os.chown(log_file, os.stat(sockets).st_uid, os.stat(sockets).st_gid)
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = PostgresServer(port, process, root, command)
    try:
        _wait_accepting(server)
    except RuntimeError:
        server.stop()
        raise
    return server


def _wait_accepting(server: PostgresServer) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited: {(server.root / 'postgres.log').read_text()[-2000:]}")
        try:
            with server.admin() as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            time.sleep(0.1)
    raise RuntimeError("PostgreSQL did not accept connections within 60 s")


@dataclass
class ZipkinServer:
    port: int
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _from_maven(artifact: str, filename: str, override_env: str, what: str) -> Path:
    """A Maven Central artifact, fetched once into the cache (or the file ``override_env`` names)."""
    override = os.environ.get(override_env)
    if override and Path(override).exists():
        return Path(override)
    cached = CACHE / filename
    if cached.exists():
        return cached
    mvn = shutil.which("mvn")
    if mvn is None:
        require_infra(f"{what} is not cached and Maven is not installed to fetch it")
    CACHE.mkdir(parents=True, exist_ok=True)
    command = [str(mvn), "-q", "dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={CACHE}"]
    subprocess.run(command, check=True, timeout=600)
    return cached


def zipkin_jar() -> Path:
    """The Zipkin server jar (``MSA_ZIPKIN_JAR`` overrides)."""
    return _from_maven(
        f"io.zipkin:zipkin-server:{ZIPKIN_VERSION}:jar:exec",
        f"zipkin-server-{ZIPKIN_VERSION}-exec.jar",
        "MSA_ZIPKIN_JAR",
        "the Zipkin jar",
    )


def start_zipkin(log_dir: Path) -> ZipkinServer:
    java = shutil.which("java")
    if java is None:
        require_infra("Java 17+ is needed to run the Zipkin server")
    jar = zipkin_jar()
    port = free_port()
    log_file = log_dir / "zipkin.log"
    jvm_options, zipkin_env = zipkin_settings(REPO / "docker-compose.yml")
    with log_file.open("ab") as out:
        process = subprocess.Popen(
            [
                str(java),
                *jvm_options,
                "-XX:TieredStopAtLevel=1",
                "-jar",
                str(jar),
                f"--server.port={port}",
                "--logging.level.root=WARN",
            ],
            env={**os.environ, **zipkin_env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = ZipkinServer(port, process, log_file)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Zipkin exited: {log_file.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError("Zipkin did not become healthy within 120 s")


# ---- Elasticsearch -------------------------------------------------------------------------------
#
# Maven Central's integ-test zip of Elasticsearch: the server with transport-netty4, x-pack-core,
# x-pack-security and apm only (no ILM, no data streams, no ingest processors) and no bundled JDK.
# It refuses to run as root, so as root (CI) it runs as nobody from a folder nobody owns.

_NOBODY = 65534


@dataclass
class ElasticsearchServer:
    port: int
    process: subprocess.Popen[bytes]
    root: Path  # the extracted distribution, its data, logs and tmp: removed by stop()
    log_file: Path
    boot_s: float = 0.0
    _client: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._client = httpx.Client(base_url=self.url, timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self._client.request(method, path, json=body)

    def bulk(self, lines: list[dict[str, Any]], *, refresh: bool = True) -> httpx.Response:
        payload = "".join(json.dumps(line) + "\n" for line in lines)
        return self._client.post(
            "/_bulk",
            params={"refresh": "true"} if refresh else None,
            content=payload.encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )

    def stop(self) -> None:
        self._client.close()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


def elasticsearch_zip() -> Path:
    """The integ-test zip of Elasticsearch (``MSA_ELASTICSEARCH_ZIP`` overrides)."""
    return _from_maven(
        f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ELASTICSEARCH_VERSION}:zip",
        f"elasticsearch-{ELASTICSEARCH_VERSION}.zip",
        "MSA_ELASTICSEARCH_ZIP",
        "the Elasticsearch zip",
    )


def _java_home() -> Path:
    """ES_JAVA_HOME, else the JDK behind ``java`` on PATH (the zip bundles none)."""
    if os.environ.get("ES_JAVA_HOME"):
        return Path(os.environ["ES_JAVA_HOME"])
    java = shutil.which("java")
    if java is None:
        require_infra("Java 17+ is needed to run Elasticsearch")
    return Path(os.path.realpath(str(java))).parents[1]


def _unzip(archive: Path, into: Path) -> Path:
    """Extract keeping the permission bits (zipfile drops them; bin/ must stay executable)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = Path(zf.extract(info, into))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                target.chmod(mode)
    (home,) = into.iterdir()
    return home


def _chown_tree(path: Path, uid: int) -> None:
    os.chown(path, uid, uid)
    for parent, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(parent, name), uid, uid, follow_symlinks=False)


def start_elasticsearch(log_dir: Path) -> ElasticsearchServer:
    """A single-node Elasticsearch on loopback, security off, 512 MB heap; ~20 s to boot."""
    java_home = _java_home()
    archive = elasticsearch_zip()
    as_root = os.geteuid() == 0
    # Not under pytest's tmp dir: that is private to root, and nobody could not reach it.
    root = Path(tempfile.mkdtemp(prefix="msa-elasticsearch-"))
    home = _unzip(archive, root / "dist")
    for name in ("data", "logs", "tmp"):
        (root / name).mkdir()
    if as_root:
        _chown_tree(root, _NOBODY)
    port, transport_port = free_port(), free_port()
    settings = {
        "cluster.name": "msa-test",
        "node.name": "msa-test",
        "discovery.type": "single-node",
        "network.host": "127.0.0.1",
        "http.port": str(port),
        "transport.port": str(transport_port),
        "xpack.security.enabled": "false",
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "path.data": str(root / "data"),
        "path.logs": str(root / "logs"),
    }
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "ES_JAVA_HOME": str(java_home),
        "ES_JAVA_OPTS": "-Xms512m -Xmx512m",
        "ES_TMPDIR": str(root / "tmp"),
    }
    log_file = log_dir / "elasticsearch.log"
    started = time.monotonic()
    with log_file.open("ab") as out:
        process = subprocess.Popen(
            [str(home / "bin" / "elasticsearch"), *(f"-E{key}={value}" for key, value in settings.items())],
            env=env,
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=_NOBODY if as_root else None,
            group=_NOBODY if as_root else None,
            extra_groups=[] if as_root else None,
        )
    server = ElasticsearchServer(port, process, root, log_file)
    deadline = started + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"Elasticsearch exited ({process.returncode}): {log_file.read_text()[-3000:]}")
        try:
            health = httpx.get(f"{server.url}/_cluster/health", timeout=2)
            if health.status_code == 200 and health.json().get("status") in ("green", "yellow"):
                server.boot_s = time.monotonic() - started
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"Elasticsearch not healthy within 180 s: {log_file.read_text()[-3000:]}")
