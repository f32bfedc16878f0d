"""The chassis config client on its own: retry, cache fallback, fail-fast, precedence, wiring."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from chassis import LiveSettings, ServiceSettings
from chassis.config_client import (
    ConfigClient,
    ConfigClientSettings,
    ConfigUnavailable,
    _delays,
    client_for,
    fetch_with_retry,
    load_settings,
)
from chassis.refresh import Refresher, changed_keys
from msa_cli.devstack import free_port
from msa_testing.polling import wait_until_async


class DemoSettings(ServiceSettings):
    service_name: str = "demo"
    flag: bool = False
    api_password: str = "dev-only-demo"

    def _secret_values(self) -> dict[str, str]:
        return {"API_PASSWORD": self.api_password}


def environment(version: str, **source: Any) -> dict[str, Any]:
    return {
        "name": "demo",
        "profiles": ["default"],
        "label": "main",
        "version": version,
        "state": None,
        "propertySources": [{"name": "repo/demo.yml", "source": source}],
    }


def client_settings(tmp_path: Path, **overrides: Any) -> ConfigClientSettings:
    values: dict[str, Any] = {
        "config_service_url": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "config_cache_dir": tmp_path / "cache",
        "config_retry_initial_s": 0.01,
        "config_retry_max_s": 0.02,
        "config_retry_max_attempts": 2,
        **overrides,
    }
    return ConfigClientSettings(**values)


def test_spring_retry_defaults() -> None:
    delays = _delays(ConfigClientSettings())
    assert len(delays) == 5  # six attempts
    assert delays == pytest.approx([1.0, 1.1, 1.21, 1.331, 1.4641])
    assert max(_delays(ConfigClientSettings(config_retry_max_attempts=12))) == 2.0


def test_retries_then_gives_up(tmp_path: Path) -> None:
    slept: list[float] = []
    client = client_settings(
        tmp_path, config_retry_max_attempts=4, config_retry_initial_s=1.0, config_retry_max_s=5
    )
    with pytest.raises(ConfigUnavailable, match="ConnectError"):
        fetch_with_retry(client, "demo", sleep=slept.append)
    assert slept == pytest.approx([1.0, 1.1, 1.21])


def test_unreachable_without_cache_uses_environment_and_defaults(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(DemoSettings, client=client_settings(tmp_path))
    assert settings.http.timeout_s == DemoSettings().http.timeout_s
    config = client_for(settings)
    assert config is not None
    assert config.snapshot.source == "none"


def test_unreachable_falls_back_to_the_cache(tmp_path: Path) -> None:
    client = client_settings(tmp_path)
    ConfigClient(DemoSettings, client, "demo").save_cache(environment("abc123", **{"http.timeout_s": 7.5}))
    cache = client.cache_file("demo")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600  # it may hold decrypted secrets
    settings = load_settings(DemoSettings, client=client)
    assert settings.http.timeout_s == 7.5
    config = client_for(settings)
    assert config is not None
    assert (config.snapshot.source, config.snapshot.version) == ("cache", "abc123")
    # The cache is per service, profile and label.
    assert client_settings(tmp_path, config_label="v1").cache_file("demo") != cache


def test_fail_fast_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="CONFIG_FAIL_FAST"):
        load_settings(DemoSettings, client=client_settings(tmp_path, config_fail_fast=True))


def test_precedence_environment_over_remote_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BREAKER__FAIL_MAX", "2")
    config = ConfigClient(DemoSettings, client_settings(tmp_path), "demo")
    remote = environment("v", **{"breaker.fail_max": 8, "breaker.reset-timeout-s": 4.5, "flag": True})
    settings, snapshot = config.build(remote, source="config-service")
    assert settings.breaker.fail_max == 2  # environment
    assert settings.breaker.reset_timeout_s == 4.5  # config-service (relaxed name)
    assert settings.breaker.success_threshold == 1  # code default
    assert settings.flag is True
    assert snapshot.version == "v"


def test_addresses_never_come_from_the_repository(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = ConfigClient(DemoSettings, client_settings(tmp_path), "demo")
    remote = environment("v", redis_url="redis://evil:6379/0", port=1, **{"auth_service_url": "http://evil"})
    with caplog.at_level(logging.WARNING):
        settings, _ = config.build(remote, source="config-service")
    defaults = DemoSettings()
    assert (settings.redis_url, settings.port, settings.auth_service_url) == (
        defaults.redis_url,
        defaults.port,
        defaults.auth_service_url,
    )
    assert "ignored" in caplog.text


def test_production_refuses_the_dev_client_password() -> None:
    with pytest.raises(ValueError, match="CONFIG_CLIENT_PASSWORD"):
        ConfigClientSettings(env="production", config_service_url="http://config")
    ConfigClientSettings(env="production", config_service_url="http://config", config_client_password="real")
    ConfigClientSettings(env="production")  # no config-service: the password is never used


def test_empty_url_means_no_config_service() -> None:
    assert ConfigClientSettings(config_service_url=" ").config_service_url is None
    assert load_settings(DemoSettings, client=ConfigClientSettings(config_service_url="")) is not None


def test_changed_keys_lists_only_what_changed() -> None:
    old = DemoSettings()
    new = DemoSettings.load(remote={"breaker": {"fail_max": 9}, "flag": True})
    assert changed_keys(old, new) == ["breaker.fail_max", "flag"]


async def test_refresh_while_config_service_is_down_keeps_settings_and_retries(tmp_path: Path) -> None:
    settings = DemoSettings()
    live = LiveSettings(settings)
    config = ConfigClient(DemoSettings, client_settings(tmp_path), "demo")
    config.snapshot = config.snapshot.__class__(source="config-service", profile="default")
    refresher = Refresher(config, live)
    assert refresher.pending is False
    assert await refresher.refresh("test") is False
    assert refresher.pending is True
    assert live.current is settings
    assert refresher.wants({"apps": ["demo"]})
    assert refresher.wants({"apps": ["*"]})
    assert not refresher.wants({"apps": ["catalog"]})
    assert not refresher.wants(["demo"])


async def test_a_refresh_swaps_version_and_settings_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = LiveSettings(DemoSettings())
    config = ConfigClient(DemoSettings, client_settings(tmp_path), "demo")
    monkeypatch.setattr(config, "fetch", lambda retry: environment("v2", flag=True))
    saving, release = threading.Event(), threading.Event()

    def slow_save(environment: dict[str, Any]) -> None:
        saving.set()
        release.wait(5)

    monkeypatch.setattr(config, "save_cache", slow_save)
    refresh = asyncio.create_task(Refresher(config, live).refresh("test"))
    try:
        await wait_until_async("the refresh to save its cache", saving.is_set, timeout_s=5, every_s=0.01)
        # what /ops/config shows while the cache file is written: the new version and its settings
        assert (config.snapshot.version, live.current.flag) == ("v2", True)
    finally:
        release.set()
    assert await refresh is True


def test_cache_file_is_valid_json(tmp_path: Path) -> None:
    client = client_settings(tmp_path)
    ConfigClient(DemoSettings, client, "demo").save_cache(environment("v1", flag=True))
    data = json.loads(client.cache_file("demo").read_text())
    assert data["version"] == "v1"
    assert "x-fetched-at" in data


def test_masking_by_name_and_by_known_secret_value() -> None:
    from chassis.config_view import MASK, masked

    flat = {"db.password": "x", "users[0].password_hash": "h", "note": "s3", "plain": 1, "api_token": "t"}
    assert masked(flat, {"s3"}) == {
        "api_token": MASK,
        "db.password": MASK,
        "note": MASK,
        "plain": 1,
        "users[0].password_hash": MASK,
    }


async def test_ops_config_masks_secrets_of_the_settings() -> None:
    import httpx
    from pydantic import SecretStr

    from chassis import create_app
    from chassis.ops import operator_headers

    class WithSecrets(DemoSettings):
        signing_key: SecretStr = SecretStr("sk-value-1")
        upstream: str = "opaque-value-2"

        def _secret_values(self) -> dict[str, str]:
            return {**super()._secret_values(), "UPSTREAM": self.upstream}

    app = create_app(WithSecrets(zipkin_endpoint=None))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://svc") as client:
        view = (await client.get("/ops/config", headers=operator_headers())).json()
    assert view["source"] == "none"
    assert view["settings"]["flag"] is False
    text = json.dumps(view)
    for secret in ("sk-value-1", "opaque-value-2", "dev-only-demo"):
        assert secret not in text
