"""config-service and a member service as real processes over a Git repository made by the test.

A commit reaches a running catalog process as a changed setting without a restart (the delay is
printed), `/monitor` refreshes only the apps it names, a catalog pinned to a tag keeps the tagged
values, secrets stay out of logs and /ops/config, and config-service outages are survived: cache at
start, current settings at run time, changes picked up when it returns.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from chassis.ops import DEV_OPS_TOKEN, operator_headers
from config_service.crypto.service import Cipher
from msa_cli.devstack import free_port
from msa_testing.configrepo import ConfigRepo
from msa_testing.infra import RedisServer
from msa_testing.polling import wait_until

pytestmark = pytest.mark.system

SP = "deploy/config-repo"
KEY = "system-test-encrypt-key"
AUTH = ("config-client", "dev-only-config-client-password")
TOKEN = "tok-3f9a-very-secret"  # stored encrypted in catalog.yml
OTHER = "pw-encrypted-with-another-key"
BIN = Path(sys.executable).parent
REFRESH_CHANNEL = "msa:config:refresh"


# Config changes arrive in milliseconds: poll often so the printed delays mean something.
wait_for = functools.partial(wait_until, timeout_s=20.0, every_s=0.05)


@dataclass
class Proc:
    """One service process started from its console script (what the Dockerfile runs)."""

    name: str
    script: str
    env: dict[str, str]
    log_file: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Proc:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "ZIPKIN_ENDPOINT": f"http://127.0.0.1:{free_port()}/api/v2/spans",  # nothing listens
            **self.env,
        }
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / self.script)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(f"{self.name} to answer", self._live, timeout_s=60)
        return self

    def _live(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.log_file.read_text()[-3000:]}")
        return httpx.get(f"{self.url}/health/live", timeout=2).status_code == 200

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ops_config(self) -> dict[str, Any]:
        # the processes get no OPS_TOKEN (see start): the development default
        response = httpx.get(f"{self.url}/ops/config", headers=operator_headers(DEV_OPS_TOKEN), timeout=5)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def setting(self, key: str) -> Any:
        return self.ops_config()["settings"][key]

    def logs(self) -> str:
        return self.log_file.read_text(errors="replace")


def catalog_yml(timeout_s: float, log_level: str = "INFO") -> str:
    token = Cipher(KEY).encrypt(TOKEN)
    other = Cipher("not-the-server-key").encrypt(OTHER)
    return (
        f"log_level: {log_level}\nhttp:\n  timeout_s: {timeout_s}\nbreaker:\n  fail_max: 4\n"
        f"extra:\n  api_token: '{{cipher}}{token}'\n  other_password: '{{cipher}}{other}'\n"
    )


@dataclass
class Stack:
    repo: ConfigRepo
    tmp: Path
    redis_url: str
    config: Proc
    catalog: Proc
    pinned: Proc
    v1: str
    extra: list[Proc] = field(default_factory=list)

    def member(self, name: str, **env: str) -> Proc:
        proc = Proc(
            name,
            "catalog",
            {
                "REDIS_URL": self.redis_url,
                "CONFIG_SERVICE_URL": self.config.url,
                "CONFIG_CACHE_DIR": str(self.tmp / "cache"),
                "CONFIG_REFRESH_RETRY_S": "0.5",
                "DATA_DIR": str(self.tmp / f"data-{name}"),
                "REPLICA_ID": name,
                **env,
            },
            self.tmp / f"{name}.log",
        )
        self.extra.append(proc)
        return proc


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("config-system")
    repo = ConfigRepo(tmp / "repo")
    repo.commit(
        "init",
        **{
            "application.yml": "log_level: INFO\nhttp:\n  timeout_s: 2.0\nbreaker:\n  reset_timeout_s: 10.0\n",
            "catalog.yml": catalog_yml(1.0),
            "reviews.yml": "http:\n  timeout_s: 1.1\n",
        },
    )
    repo.git("tag", "v1")
    v1 = repo.git("rev-parse", "HEAD")
    redis_url = redis_server.url_for(13)
    redis_server.client(13).flushdb()
    config = Proc(
        "config-service",
        "config-service",
        {
            "REDIS_URL": redis_url,
            "CONFIG_REPO_URI": str(repo.root),
            "CONFIG_SEARCH_PATHS": SP,
            "ENCRYPT_KEY": KEY,
            "CONFIG_CLONE_DIR": str(tmp / "clones"),
        },
        tmp / "config-service.log",
    ).start()
    made = Stack(repo, tmp, redis_url, config, catalog=config, pinned=config, v1=v1)  # members follow
    made.catalog = made.member("catalog-main").start()
    # Pinned to the tag: keeps the tagged values whatever main does.
    made.pinned = made.member(
        "catalog-pinned", CONFIG_LABEL="v1", CONFIG_CACHE_DIR=str(tmp / "cache-pinned")
    ).start()
    try:
        yield made
    finally:
        for proc in [*made.extra, config]:
            proc.stop()


def test_members_start_with_config_from_the_repository(stack: Stack) -> None:
    view = stack.catalog.ops_config()
    assert view["source"] == "config-service"
    assert view["version"] == stack.v1
    assert view["settings"]["http.timeout_s"] == 1.0  # catalog.yml beats application.yml
    assert view["settings"]["breaker.fail_max"] == 4
    assert view["settings"]["breaker.reset_timeout_s"] == 10.0
    assert stack.pinned.ops_config()["label"] == "v1"


def test_a_commit_reaches_the_running_service_without_restart(stack: Stack) -> None:
    catalog, pinned = stack.catalog, stack.pinned
    assert catalog.process is not None
    pid = catalog.process.pid
    pinned_before = pinned.ops_config()["refreshes"]
    started = time.monotonic()
    sha = stack.repo.commit("faster timeouts", **{"catalog.yml": catalog_yml(1.7, log_level="DEBUG")})
    wait_for("the new timeout in catalog", lambda: catalog.setting("http.timeout_s") == 1.7, every_s=0.02)
    delay = time.monotonic() - started
    print(f"\ncommit-to-service delay: {delay:.2f} s (poll interval 2 s)")
    view = catalog.ops_config()
    assert view["version"] == sha
    assert view["settings"]["log_level"] == "DEBUG"
    assert catalog.running
    assert catalog.process.pid == pid  # the same process: no restart
    wait_for("catalog to log the change", lambda: "changed keys: http.timeout_s, log_level" in catalog.logs())
    # The pinned replica heard the same event, re-fetched at v1, and kept the tagged values.
    wait_for("the pinned catalog to re-fetch", lambda: pinned.ops_config()["refreshes"] > pinned_before)
    pinned_view = pinned.ops_config()
    assert pinned_view["settings"]["http.timeout_s"] == 1.0
    assert pinned_view["version"] == stack.v1


def test_monitor_webhook_refreshes_only_the_named_apps(stack: Stack) -> None:
    catalog = stack.catalog
    before = catalog.ops_config()["refreshes"]
    events = redis.Redis.from_url(stack.redis_url).pubsub()
    events.subscribe(REFRESH_CHANNEL)
    try:

        def push(path: str) -> list[str]:
            payload = {
                "ref": "refs/heads/main",
                "commits": [{"added": [], "removed": [], "modified": [path]}],
            }
            response = httpx.post(
                f"{stack.config.url}/monitor",
                json=payload,
                headers={"X-GitHub-Event": "push"},
                auth=AUTH,
                timeout=10,
            )
            assert response.status_code == 200, response.text
            apps: list[str] = response.json()
            return apps

        assert push(f"{SP}/reviews.yml") == ["reviews"]
        assert push(f"{SP}/catalog.yml") == ["catalog"]
        received = []
        for _ in range(100):
            message = events.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                received.append(json.loads(message["data"])["apps"])
            if len(received) == 2:
                break
        assert received == [["reviews"], ["catalog"]]
    finally:
        events.close()
    # Events arrive in order on one subscription: after the catalog one is handled, the reviews
    # one has been seen too, and it did not make catalog re-fetch.
    wait_for("catalog to re-fetch", lambda: catalog.ops_config()["refreshes"] >= before + 1)
    time.sleep(0.3)
    assert catalog.ops_config()["refreshes"] == before + 1


def test_cipher_round_trip_and_no_secret_in_logs_or_ops_config(stack: Stack) -> None:
    encrypted = httpx.post(
        f"{stack.config.url}/encrypt", content="round-trip-value", auth=AUTH, timeout=5
    ).text
    assert (
        httpx.post(f"{stack.config.url}/decrypt", content=encrypted, auth=AUTH, timeout=5).text
        == "round-trip-value"
    )
    served = httpx.get(f"{stack.config.url}/catalog/default", auth=AUTH, timeout=5).json()
    source = served["propertySources"][0]["source"]
    assert source["extra.api_token"] == TOKEN  # decrypted for the client
    assert source["invalid.extra.other_password"] == "<n/a>"  # encrypted with another key
    assert "extra.other_password" not in source
    view = stack.catalog.ops_config()
    assert "extra.api_token" in view["remote_keys"]
    assert "invalid.extra.other_password" in view["remote_keys"]
    assert TOKEN not in json.dumps(view)
    wait_for(
        "config-service to log the undecryptable key",
        lambda: "cannot decrypt extra.other_password" in stack.config.logs(),
    )
    for proc in (stack.config, stack.catalog, stack.pinned):
        logs = proc.logs()
        assert TOKEN not in logs, proc.name
        assert OTHER not in logs, proc.name
        assert "dev-only-config-client-password" not in logs, proc.name


def test_malformed_yaml_commit_keeps_the_last_good_values(stack: Stack) -> None:
    catalog = stack.catalog
    good = catalog.ops_config()["version"]
    bad = stack.repo.commit("broken", **{"catalog.yml": "http:\n  timeout_s: [1.2\n"})

    def reported() -> list[dict[str, Any]]:
        body = httpx.get(f"{stack.config.url}/health/ready", timeout=5).json()
        malformed: list[dict[str, Any]] = body["checks"]["repository"]["malformed"]
        return malformed

    malformed = wait_for("the broken file in /health/ready", reported)
    assert [(m["path"], m["commit"], m["serving"]) for m in malformed] == [(f"{SP}/catalog.yml", bad, good)]
    wait_for("catalog to see the new version", lambda: catalog.ops_config()["version"] == bad)
    assert catalog.setting("http.timeout_s") == 1.7  # still the last good file's value
    wait_for("config-service to log it", lambda: "does not parse" in stack.config.logs())
    stack.repo.commit("repaired", **{"catalog.yml": catalog_yml(1.7, log_level="DEBUG")})
    wait_for("the repair to clear the report", lambda: reported() == [])


def test_traversal_odd_names_and_unknown_labels_over_real_http(stack: Stack) -> None:
    base = stack.config.url
    for path in ("/%2E%2E/default", "/catalog/%2e%2e", "/catalog/default/..(_)..(_)etc", "/cat$log/default"):
        response = httpx.get(base + path, auth=AUTH, timeout=5)
        assert response.status_code == 400, path
        assert response.headers["content-type"] == "application/problem+json"
    for path in ("/catalog/default/no-such-branch", "/no-such-branch/catalog-default.yml"):
        response = httpx.get(base + path, auth=AUTH, timeout=5)
        assert response.status_code == 404, path
        assert response.json()["title"] == "Unknown label"
    assert httpx.get(f"{base}/catalog/default", timeout=5).status_code == 401


def test_config_service_outages(stack: Stack) -> None:
    catalog = stack.catalog
    stack.config.stop()
    try:
        # Down at start: a new replica starts from the last-known-good cache.
        cached = stack.member(
            "catalog-cached", CONFIG_RETRY_MAX_ATTEMPTS="2", CONFIG_RETRY_INITIAL_S="0.2"
        ).start()
        view = cached.ops_config()
        assert view["source"] == "cache"
        assert view["settings"]["http.timeout_s"] == 1.7
        assert "using the cached configuration" in cached.logs()
        # Down at run time: the running service keeps its settings and keeps answering.
        sha = stack.repo.commit("while config-service is down", **{"catalog.yml": catalog_yml(0.9)})
        time.sleep(2.5)
        assert catalog.running
        assert httpx.get(f"{catalog.url}/health/live", timeout=5).status_code == 200
        assert catalog.setting("http.timeout_s") == 1.7
    finally:
        stack.config.start()
    # Back: its start-up announcement makes every client re-fetch.
    for proc in (catalog, cached):
        wait_for(
            f"{proc.name} to pick up the change", lambda proc=proc: proc.setting("http.timeout_s") == 0.9
        )
        assert proc.ops_config()["version"] == sha
    assert cached.ops_config()["source"] == "config-service"
    cached.stop()


def _redis_on(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for("redis-server", lambda: redis.Redis(port=port, socket_connect_timeout=0.2).ping(), timeout_s=10)
    return process


def test_a_redis_outage_loses_events_but_not_the_change(tmp_path: Path) -> None:
    """Events published while Redis is down are lost; on reconnect the member re-fetches anyway."""
    port = free_port()
    broker = _redis_on(port)
    repo = ConfigRepo(tmp_path / "repo")
    repo.commit("init", **{"catalog.yml": "http:\n  timeout_s: 1.0\n"})
    redis_url = f"redis://127.0.0.1:{port}/0"
    config = Proc(
        "config-service",
        "config-service",
        {
            "REDIS_URL": redis_url,
            "CONFIG_REPO_URI": str(repo.root),
            "CONFIG_SEARCH_PATHS": SP,
            "ENCRYPT_KEY": KEY,
        },
        tmp_path / "config-service.log",
    )
    catalog = Proc(
        "catalog",
        "catalog",
        {
            "REDIS_URL": redis_url,
            "CONFIG_SERVICE_URL": config.url,
            "CONFIG_CACHE_DIR": str(tmp_path / "cache"),
            "DATA_DIR": str(tmp_path / "data"),
        },
        tmp_path / "catalog.log",
    )
    try:
        config.start()
        catalog.start()
        assert catalog.setting("http.timeout_s") == 1.0
        broker.terminate()
        broker.wait(10)
        sha = repo.commit("during the outage", **{"catalog.yml": "http:\n  timeout_s: 0.8\n"})
        wait_for(
            "config-service to miss the event", lambda: "not published: Redis unreachable" in config.logs()
        )
        assert catalog.setting("http.timeout_s") == 1.0
        broker = _redis_on(port)
        wait_for("catalog to catch up", lambda: catalog.setting("http.timeout_s") == 0.8, timeout_s=30)
        assert catalog.ops_config()["version"] == sha
        assert "config refresh channel lost" in catalog.logs()
    finally:
        catalog.stop()
        config.stop()
        broker.terminate()
        broker.wait(10)


@pytest.mark.parametrize("profile", ["default", "docker"])
def test_the_platform_config_repo_validates_for_every_service(profile: str) -> None:
    """deploy/config-repo as checked out: every service's settings accept it, every secret decrypts."""
    import importlib

    from chassis.config_client import ConfigClient, ConfigClientSettings
    from config_service.environment.repository import NativeRepository
    from config_service.environment.service import EnvironmentService
    from config_service.settings import DEV_ENCRYPT_KEY

    root = Path(__file__).resolve().parents[1]
    service = EnvironmentService(
        NativeRepository(root), search_paths=[SP], cipher=Cipher(DEV_ENCRYPT_KEY), uri=str(root)
    )
    members = {
        "auth-service": "auth_service",
        "catalog": "catalog",
        "inventory": "inventory",
        "reviews": "reviews",
        "orders": "orders",
        "gateway-web": "gateway_web",
        "gateway-mobile": "gateway_mobile",
        "ops-dashboard": "ops_dashboard",
    }
    for app, package in members.items():
        assert (root / SP / f"{app}.yml").is_file(), app
        settings_cls = importlib.import_module(f"{package}.settings").Settings
        environment = service.environment(app, [profile], None)
        client = ConfigClient(settings_cls, ConfigClientSettings(config_service_url="http://unused"), app)
        settings, snapshot = client.build(environment, source="config-service")  # raises when invalid
        assert not [key for key in snapshot.remote if key.startswith("invalid.")], app
        assert settings.service_name == app
        unused = sorted(
            key
            for key in snapshot.remote
            if key.split(".")[0].split("[")[0].replace("-", "_") not in settings_cls.model_fields
        )
        assert not unused, f"{app}: keys no setting reads (typo?): {unused}"
