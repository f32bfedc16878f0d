"""Real infrastructure for tests: redis-server and the Zipkin server, on free loopback ports.

In CI (``MSA_STRICT=1``, set by .ci/run) missing infrastructure fails the test; on a laptop it
skips with a message saying what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from msa_cli.devstack import free_port

__all__ = [
    "ZIPKIN_VERSION",
    "RedisServer",
    "ZipkinServer",
    "require_infra",
    "start_redis",
    "start_zipkin",
    "strict",
    "zipkin_jar",
]

ZIPKIN_VERSION = "3.6.1"
CACHE = Path(os.environ.get("MSA_CACHE_DIR", Path.home() / ".cache" / "msa-platform"))


def strict() -> bool:
    return os.environ.get("MSA_STRICT") == "1"


def require_infra(reason: str) -> None:
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


def start_redis() -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        require_infra("redis-server not installed (apt-get install -y redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port, process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if server.client().ping():
                return server
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


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


def zipkin_jar() -> Path:
    """The Zipkin server jar, fetched once from Maven Central into the cache."""
    override = os.environ.get("MSA_ZIPKIN_JAR")
    if override and Path(override).exists():
        return Path(override)
    jar = CACHE / f"zipkin-server-{ZIPKIN_VERSION}-exec.jar"
    if jar.exists():
        return jar
    mvn = shutil.which("mvn")
    if mvn is None:
        require_infra("the Zipkin jar is not cached and Maven is not installed to fetch it")
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            str(mvn),
            "-q",
            "dependency:copy",
            f"-Dartifact=io.zipkin:zipkin-server:{ZIPKIN_VERSION}:jar:exec",
            f"-DoutputDirectory={CACHE}",
        ],
        check=True,
        timeout=600,
    )
    return jar


def start_zipkin(log_dir: Path) -> ZipkinServer:
    java = shutil.which("java")
    if java is None:
        require_infra("Java 17+ is needed to run the Zipkin server")
    jar = zipkin_jar()
    port = free_port()
    log_file = log_dir / "zipkin.log"
    with log_file.open("ab") as out:
        process = subprocess.Popen(
            [
                str(java),
                "-Xms64m",
                "-Xmx256m",
                "-XX:TieredStopAtLevel=1",
                "-jar",
                str(jar),
                f"--server.port={port}",
                "--logging.level.root=WARN",
            ],
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
