"""Settings precedence (environment > config-service > code defaults) and production guards."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chassis import ServiceSettings
from chassis.keys import unflatten
from chassis.settings import LiveSettings


class SecretSettings(ServiceSettings):
    api_secret: str = "dev-only-secret"

    def _secret_values(self) -> dict[str, str]:
        return {"api_secret": self.api_secret}


def test_environment_beats_remote_beats_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BREAKER__FAIL_MAX", "7")
    settings = ServiceSettings.load(
        remote={"breaker.fail_max": 3, "breaker.reset-timeout-s": 4.5, "log_level": "DEBUG"}
    )
    assert settings.breaker.fail_max == 7  # environment
    assert settings.breaker.reset_timeout_s == 4.5  # remote (dashes relaxed to underscores)
    assert settings.breaker.success_threshold == 1  # default
    assert settings.log_level == "DEBUG"
    assert settings.http.timeout_s == 2.0


def test_remote_values_are_validated() -> None:
    with pytest.raises(ValidationError):
        ServiceSettings.load(remote={"breaker.fail_max": 0})


def test_production_refuses_dev_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENV", "production")
    with pytest.raises(ValidationError, match="api_secret"):
        SecretSettings()
    monkeypatch.setenv("API_SECRET", "a-real-secret-from-the-vault")
    assert SecretSettings().api_secret == "a-real-secret-from-the-vault"


def test_dotted_keys_become_nested_mappings() -> None:
    assert unflatten({"a.b": 1, "a.c-d": 2, "e": 3}) == {"a": {"b": 1, "c_d": 2}, "e": 3}


def test_live_settings_notifies_listeners_with_old_and_new() -> None:
    live = LiveSettings(ServiceSettings(log_level="INFO"))
    seen: list[tuple[str, str]] = []
    live.subscribe(lambda old, new: seen.append((old.log_level, new.log_level)))
    live.replace(ServiceSettings(log_level="DEBUG"))
    assert seen == [("INFO", "DEBUG")]
    assert live.current.log_level == "DEBUG"
