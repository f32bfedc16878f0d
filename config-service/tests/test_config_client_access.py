"""Per-client access: a client reads the application of its own name and what CONFIG_CLIENT_APPS
grants it; ``*`` reads everything and may use /encrypt, /decrypt and /monitor. Anything else is
403 problem+json. The last test runs config-service and catalog as `msa dev up` does, from
docker-compose.yml, so the credentials compose gives each service are the ones that work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from chassis.ops import operator_headers
from config_service.crypto.service import Cipher
from config_service.settings import DEV_ENCRYPT_KEY, Settings
from msa_testing.fixtures import Topology

PROBLEM = "application/problem+json"
FILES = {
    "application.yml": "shared: from-application\n",
    "catalog.yml": "owner: catalog\n",
    "reviews.yml": "owner: reviews\n",
    "auth-service.yml": "users:\n  alice:\n    password_hash: 'not-for-catalog'\n",
}
CLIENTS = "config-client:ops-pw,catalog:catalog-pw,gateway-web:web-pw"


async def test_a_client_reads_its_own_application_and_its_grants_only(git_repo: Any, config_app: Any) -> None:
    git_repo.commit("init", **FILES)
    async with config_app(
        git_repo.root,
        config_clients=CLIENTS,
        config_client_apps="config-client=*,gateway-web=reviews",
    ) as cfg:
        catalog, web, ops = ("catalog", "catalog-pw"), ("gateway-web", "web-pw"), ("config-client", "ops-pw")
        allowed = {
            "catalog reads catalog": await cfg.client.get("/catalog/default", auth=catalog),
            "catalog reads catalog merged": await cfg.client.get("/catalog-default.yml", auth=catalog),
            "a grant: web reads reviews": await cfg.client.get("/reviews/default", auth=web),
            "* reads auth-service": await cfg.client.get("/auth-service/default", auth=ops),
        }
        refused = {
            "catalog reads auth-service": await cfg.client.get("/auth-service/default", auth=catalog),
            "catalog reads it merged": await cfg.client.get("/auth-service-default.json", auth=catalog),
            "catalog reads it at a label": await cfg.client.get("/auth-service/default/main", auth=catalog),
            "catalog reads reviews": await cfg.client.get("/main/reviews-default.yml", auth=catalog),
            "web reads catalog": await cfg.client.get("/catalog/default", auth=web),
        }
    for what, response in allowed.items():
        assert response.status_code == 200, (what, response.text)
    assert "owner: catalog" in allowed["catalog reads catalog merged"].text
    for what, response in refused.items():
        assert response.status_code == 403, (what, response.status_code)
        assert response.headers["content-type"] == PROBLEM, what
        assert "not-for-catalog" not in response.text, what


async def test_decrypt_encrypt_and_monitor_need_a_client_granted_everything(
    git_repo: Any, config_app: Any
) -> None:
    git_repo.commit("init", **FILES)
    # The repository is public: a {cipher} value of auth-service.yml is readable by anyone, so
    # /decrypt would hand any client every secret.
    secret = Cipher(DEV_ENCRYPT_KEY).encrypt("a-password-hash")
    async with config_app(git_repo.root, config_clients=CLIENTS) as cfg:
        catalog, ops = ("catalog", "catalog-pw"), ("config-client", "ops-pw")
        text = {"content-type": "text/plain"}
        form = {"content-type": "application/x-www-form-urlencoded"}
        refused = [
            await cfg.client.post("/decrypt", content=secret, headers=text, auth=catalog),
            await cfg.client.post("/encrypt", content="x", headers=text, auth=catalog),
            await cfg.client.get("/encrypt/status", auth=catalog),
            await cfg.client.post("/monitor", content="path=catalog", headers=form, auth=catalog),
        ]
        decrypted = await cfg.client.post("/decrypt", content=secret, headers=text, auth=ops)
    for response in refused:
        assert response.status_code == 403, (response.request.url, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert "a-password-hash" not in response.text
    assert decrypted.text == "a-password-hash"


def test_grants_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFIG_CLIENTS", "ops:pw-1,gateway-web:pw-2,catalog:pw-3")
    monkeypatch.setenv("CONFIG_CLIENT_APPS", "ops=*, gateway-web=reviews|catalog")
    settings = Settings()
    assert settings.apps_of("ops") == {"ops", "*"}
    assert settings.apps_of("gateway-web") == {"gateway-web", "reviews", "catalog"}
    assert settings.apps_of("catalog") == {"catalog"}, "no grant: its own application only"
    monkeypatch.setenv("CONFIG_CLIENT_APPS", '{"catalog": ["reviews"]}')
    assert Settings().apps_of("catalog") == {"catalog", "reviews"}
    for bad, message in (
        ("catalogue=reviews", "lacks: catalogue"),  # a typo would silently grant nothing
        ("catalog=../secrets", "not application names"),
        ("catalog", "client=app1"),
    ):
        monkeypatch.setenv("CONFIG_CLIENT_APPS", bad)
        with pytest.raises(ValueError, match=message):
            Settings()


def test_the_default_client_reads_everything() -> None:
    settings = Settings()
    (client,) = settings.config_clients
    assert "*" in settings.apps_of(client)


def test_compose_and_msa_dev_up_give_each_service_a_client_of_its_own(
    make_topology: Callable[..., Topology],
) -> None:
    topology = make_topology(only={"config-service", "catalog"})
    catalog_env = topology.env("catalog")
    # what the chassis config client of catalog sends (its default user when compose names none)
    catalog = (catalog_env.get("CONFIG_CLIENT_USER", "config-client"), catalog_env["CONFIG_CLIENT_PASSWORD"])
    config = topology.url("config-service")
    # catalog started with its configuration from config-service, through its own client
    view = httpx.get(f"{topology.url('catalog')}/ops/config", headers=operator_headers(), timeout=5).json()
    assert view["source"] == "config-service"
    own = httpx.get(f"{config}/catalog/docker", auth=catalog, timeout=5)
    others = httpx.get(f"{config}/auth-service/docker", auth=catalog, timeout=5)
    assert own.status_code == 200, own.text
    assert others.status_code == 403, "catalog's credentials do not read auth-service's password hashes"
    assert others.headers["content-type"] == PROBLEM
    assert catalog[0] == "catalog"
