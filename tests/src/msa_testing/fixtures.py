"""Pytest fixtures shared by every test in the repository (registered in the root conftest.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from msa_cli.devstack import DevStack, LocalService
from msa_testing.downstreams import close_replica_clients
from msa_testing.infra import (
    ElasticsearchServer,
    PostgresServer,
    RedisServer,
    ZipkinServer,
    require_infra,
    start_elasticsearch,
    start_postgres,
    start_redis,
    start_zipkin,
)

__all__ = ["Topology"]

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "docker-compose.yml"

# Spans leave every 5 s by default; tests want them in Zipkin sooner.
FAST_SPANS = {"OTEL_BSP_SCHEDULE_DELAY": "200"}


@pytest.fixture(autouse=True)
def _close_replica_clients() -> Iterator[None]:
    """What ``msa_testing.downstreams.replica_client`` opened in a test is closed after it."""
    yield
    close_replica_clients()


@pytest.fixture(name="require_infra")
def _require_infra() -> Callable[[str], None]:
    return require_infra


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


_dbs = itertools.cycle(range(1, 16))


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A freshly flushed Redis database of the session's server (db 0 is left alone)."""
    db = next(_dbs)
    redis_server.client(db).flushdb()
    return redis_server.url_for(db)


@pytest.fixture(scope="session")
def zipkin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZipkinServer]:
    server = start_zipkin(tmp_path_factory.mktemp("zipkin"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def elasticsearch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ElasticsearchServer]:
    """A real single-node Elasticsearch (Maven Central's integ-test zip), started once per session."""
    server = start_elasticsearch(tmp_path_factory.mktemp("elasticsearch"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL cluster, started once per session; each test takes its own database."""
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """``store_url("catalog")``: an empty store for that service, on each engine a service can run
    on (the test runs twice): a SQLite file in tmp_path, then a database of a real PostgreSQL."""

    def make(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / f'{name}.sqlite3'}"
        server: PostgresServer = request.getfixturevalue("postgres_server")
        return server.create_database(name.replace("-", "_"))

    return make


@pytest.fixture
def database_url(store_url: Callable[[str], str]) -> str:
    """One empty store, on each engine."""
    return store_url("store")


class Topology:
    """What `msa dev up` runs, on free ports, for one test session or one test."""

    def __init__(self, stack: DevStack) -> None:
        self.stack = stack

    def url(self, service: str) -> str:
        return self.stack.url(service)

    def service(self, name: str) -> LocalService:
        return self.stack.services[name]

    def env(self, service: str) -> dict[str, str]:
        return dict(self.stack.services[service].env)

    def log_file(self, service: str) -> Path:
        return self.stack.services[service].log_file

    def stop(self, service: str) -> None:
        self.stack.stop_service(service)

    def start(self, service: str, timeout_s: float = 60.0) -> None:
        self.stack.start_service(service)
        self.stack.wait_ready([service], timeout_s=timeout_s)

    def restart(self, service: str, env: Mapping[str, str] | None = None) -> None:
        self.stop(service)
        if env:
            self.stack.services[service].env.update(env)
        self.start(service)

    @property
    def redis_url(self) -> str:
        assert self.stack.redis_url
        return self.stack.redis_url

    @property
    def zipkin_url(self) -> str | None:
        return self.stack.zipkin_url


def _make(
    state_dir: Path,
    zipkin: ZipkinServer | None,
    env: Mapping[str, Mapping[str, str]] | None = None,
    only: set[str] | None = None,
) -> Topology:
    overrides: dict[str, dict[str, str]] = {"*": dict(FAST_SPANS)}
    for service, values in (env or {}).items():
        overrides.setdefault(service, {}).update(values)
    stack = DevStack(
        compose_file=COMPOSE,
        state_dir=state_dir,
        free_ports=True,
        zipkin_url=zipkin.url if zipkin else "http://127.0.0.1:9",  # nothing listens: spans are dropped
        only=only,
        env_overrides=overrides,
    )
    try:
        stack.plan()
        stack.start()
        stack.wait_ready(timeout_s=120)
    except BaseException:
        stack.stop()
        raise
    return Topology(stack)


@pytest.fixture(scope="session")
def topology(tmp_path_factory: pytest.TempPathFactory, zipkin_server: ZipkinServer) -> Iterator[Topology]:
    """The whole platform as local processes, shared by the session's system tests.

    A test that stops a service must start it again before it ends."""
    topo = _make(tmp_path_factory.mktemp("topology"), zipkin_server)
    yield topo
    topo.stack.stop()


@pytest.fixture
def make_topology(tmp_path: Path) -> Iterator[Callable[..., Topology]]:
    """A private topology with its own environment overrides: ``make_topology(env={...}, only={...})``."""
    made: list[Topology] = []

    def make(**kwargs: Any) -> Topology:
        topo = _make(tmp_path / f"topology-{len(made)}", kwargs.pop("zipkin", None), **kwargs)
        made.append(topo)
        return topo

    yield make
    for topo in made:
        topo.stack.stop()
