"""The Spring Cloud Config API in-process, over a real Git repository and a real Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from chassis.config_client import merge_property_sources
from chassis.keys import flatten
from chassis.ops import operator_headers
from config_service.crypto.service import Cipher
from config_service.environment.parsing import parse_properties, property_text

SP = "deploy/config-repo"
BASE = {
    "application.yml": "http:\n  timeout_s: 1.0\nshared: from-application\nlist: [a, b]\n",
    "application-docker.yml": "http:\n  timeout_s: 2.0\nshared: from-application-docker\n",
    "application-dev.properties": "shared=from-application-dev\nflag=true\n",
    "catalog.yml": "http:\n  timeout_s: 3.0\nlist: [c]\nowner: catalog\n",
    "catalog-docker.yml": "breaker:\n  fail_max: 9\n",
    "catalog-dev.yml": "breaker:\n  fail_max: 4\nowner: catalog-dev\n",
    "reviews.yml": "owner: reviews\n",
}


def names(env: dict[str, Any]) -> list[str]:
    return [ps["name"].rsplit("/", 1)[1] for ps in env["propertySources"]]


async def test_spring_environment_precedence(git_repo: Any, config_app: Any) -> None:
    sha = git_repo.commit("init", **BASE)
    async with config_app(git_repo.root) as cfg:
        response = await cfg.client.get("/catalog/docker")
        assert response.status_code == 200
        env = response.json()
        assert set(env) == {"name", "profiles", "label", "version", "state", "propertySources"}
        assert (env["name"], env["profiles"], env["label"], env["version"], env["state"]) == (
            "catalog",
            ["docker"],
            None,  # Spring answers null when no label was asked
            sha,
            None,
        )
        # {app}-{profile} > application-{profile} > {app} > application
        assert names(env) == [
            "catalog-docker.yml",
            "application-docker.yml",
            "catalog.yml",
            "application.yml",
        ]
        assert env["propertySources"][0]["name"] == f"{git_repo.root}/{SP}/catalog-docker.yml"
        assert env["propertySources"][2]["source"] == {
            "http.timeout_s": 3.0,
            "list[0]": "c",
            "owner": "catalog",
        }
        merged = merge_property_sources([ps["source"] for ps in env["propertySources"]])
        assert merged["http.timeout_s"] == 2.0  # application-{profile} beats {app}
        assert merged["shared"] == "from-application-docker"
        assert merged["list[0]"] == "c"
        assert "list[1]" not in merged  # a list is replaced whole

        # An unknown app still gets the shared files, like Spring.
        other = (await cfg.client.get("/nobody/default")).json()
        assert names(other) == ["application.yml"]


async def test_several_profiles_last_wins(git_repo: Any, config_app: Any) -> None:
    git_repo.commit("init", **BASE)
    async with config_app(git_repo.root) as cfg:
        env = (await cfg.client.get("/catalog/docker,dev")).json()
        assert env["profiles"] == ["docker", "dev"]
        assert names(env) == [
            "catalog-dev.yml",
            "application-dev.properties",
            "catalog-docker.yml",
            "application-docker.yml",
            "catalog.yml",
            "application.yml",
        ]
        merged = merge_property_sources([ps["source"] for ps in env["propertySources"]])
        assert merged["breaker.fail_max"] == 4  # dev (last) beats docker
        assert merged["shared"] == "from-application-dev"
        assert merged["owner"] == "catalog-dev"
        reverse = merge_property_sources(
            [ps["source"] for ps in (await cfg.client.get("/catalog/dev,docker")).json()["propertySources"]]
        )
        assert reverse["breaker.fail_max"] == 9


@pytest.mark.parametrize("label", [None, "v1"])
async def test_merged_forms_agree_with_json(git_repo: Any, config_app: Any, label: str | None) -> None:
    git_repo.commit("init", **BASE)
    git_repo.git("tag", "v1")
    git_repo.commit("later", **{"catalog.yml": "owner: later\n"})
    async with config_app(git_repo.root) as cfg:
        env_url = "/catalog/docker,dev" + (f"/{label}" if label else "")
        env = (await cfg.client.get(env_url)).json()
        expected = merge_property_sources([ps["source"] for ps in env["propertySources"]])
        assert expected["owner"] == ("catalog-dev")
        prefix = f"/{label}" if label else ""
        for ext in ("yml", "yaml"):
            response = await cfg.client.get(f"{prefix}/catalog-docker,dev.{ext}")
            assert response.status_code == 200
            assert flatten(yaml.safe_load(response.text)) == expected
        response = await cfg.client.get(f"{prefix}/catalog-docker,dev.json")
        assert flatten(response.json()) == expected
        response = await cfg.client.get(f"{prefix}/catalog-docker,dev.properties")
        assert parse_properties(response.text) == {
            key: property_text(value) for key, value in expected.items()
        }
        # A dash inside the app name: the last dash starts the profiles.
        response = await cfg.client.get(f"{prefix}/auth-service-docker.yml")
        assert yaml.safe_load(response.text)["shared"] == "from-application-docker"


async def test_labels_tag_branch_commit_and_unknown(git_repo: Any, config_app: Any) -> None:
    first = git_repo.commit("init", **BASE)
    git_repo.git("tag", "-a", "v1", "-m", "release 1")  # annotated: peeled to its commit
    git_repo.git("checkout", "-q", "-b", "feature/x")
    on_branch = git_repo.commit("branch", **{"catalog.yml": "owner: feature\n"})
    git_repo.git("checkout", "-q", "main")
    latest = git_repo.commit("main moves", **{"catalog.yml": "owner: main-2\n"})

    async def owner(url: str) -> tuple[str, str]:
        env = (await cfg.client.get(url)).json()
        source = next(ps["source"] for ps in env["propertySources"] if ps["name"].endswith("/catalog.yml"))
        return source["owner"], env["version"]

    async with config_app(git_repo.root) as cfg:
        assert await owner("/catalog/default") == ("main-2", latest)
        assert await owner("/catalog/default/v1") == ("catalog", first)
        assert await owner("/catalog/default/feature(_)x") == ("feature", on_branch)
        assert await owner(f"/catalog/default/{first}") == ("catalog", first)
        assert await owner(f"/catalog/default/{first[:10]}") == ("catalog", first)
        for unknown in (
            "/catalog/default/nope",
            "/catalog/default/deadbeefdeadbeef",
            "/nope/catalog-default.yml",
        ):
            response = await cfg.client.get(unknown)
            assert response.status_code == 404, unknown
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["title"] == "Unknown label"


async def test_master_is_the_fallback_default_label(git_repo: Any, config_app: Any) -> None:
    git_repo.git("checkout", "-q", "-b", "master")
    sha = git_repo.commit("init", **BASE)
    async with config_app(git_repo.root) as cfg:
        env = (await cfg.client.get("/catalog/default")).json()
        assert env["version"] == sha
        ready = (await cfg.client.get("/health/ready")).json()["checks"]["repository"]
        assert (ready["label"], ready["version"]) == ("master", sha)


@pytest.mark.parametrize(
    "url",
    [
        "/%2E%2E/default",
        "/catalog/%2E%2E",
        "/catalog/default/..(_)..(_)etc",
        "/catalog/default/(_)etc(_)passwd",
        "/cat$log/default",
        "/catalog/de%20v",
        "/..%2F..%2Fetc-default.yml",
        "/%2E%2E/catalog-default.yml",
        "/..(_)x/catalog-default.yml",
        "/catalog.yml",
    ],
)
async def test_traversal_and_odd_names_are_400_problems(git_repo: Any, config_app: Any, url: str) -> None:
    git_repo.commit("init", **BASE)
    async with config_app(git_repo.root) as cfg:
        response = await cfg.client.get(url)
        assert response.status_code in (400, 404), url
        assert response.headers["content-type"] == "application/problem+json"
        if response.status_code == 404:  # only when no route matches at all (a '/' decoded from %2F)
            assert "%2F" in url
        else:
            assert response.json()["title"] == "Invalid name"


async def test_reading_needs_client_credentials(git_repo: Any, config_app: Any) -> None:
    git_repo.commit("init", **BASE)
    async with config_app(git_repo.root) as cfg:
        for url in ("/catalog/default", "/catalog-default.yml", "/encrypt/status"):
            response = await cfg.client.get(url, auth=None)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Basic")
            response = await cfg.client.get(url, auth=("config-client", "wrong"))
            assert response.status_code == 401
        assert (await cfg.client.get("/health/live", auth=None)).status_code == 200
        assert (await cfg.client.get("/health/ready", auth=None)).status_code == 200


def test_production_refuses_the_dev_key_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    from config_service.settings import Settings

    monkeypatch.setenv("ENV", "production")
    with pytest.raises(ValueError, match="ENCRYPT_KEY"):
        Settings(config_clients={"svc": "a-real-password"})
    with pytest.raises(ValueError, match="CONFIG_CLIENTS"):
        Settings(encrypt_key="a-real-key")
    Settings(encrypt_key="a-real-key", config_clients={"svc": "a-real-password"})


async def test_cipher_round_trip_and_values_served_decrypted(git_repo: Any, config_app: Any) -> None:
    wrong = Cipher("some-other-key").encrypt("other-secret-value")
    async with config_app(git_repo.root, encrypt_key="the-test-key") as cfg:
        status = await cfg.client.get("/encrypt/status")
        assert status.json() == {"status": "OK"}
        encrypted = (
            await cfg.client.post("/encrypt", content="p4ss-w0rd", headers={"content-type": "text/plain"})
        ).text
        assert "p4ss" not in encrypted
        decrypted = await cfg.client.post(
            "/decrypt", content=encrypted, headers={"content-type": "text/plain"}
        )
        assert decrypted.text == "p4ss-w0rd"
        bad = await cfg.client.post("/decrypt", content=wrong)
        assert bad.status_code == 400
        assert bad.headers["content-type"] == "application/problem+json"
        git_repo.commit(
            "secrets",
            **{
                "catalog.yml": f"db:\n  password: '{{cipher}}{encrypted}'\n  other: '{{cipher}}{wrong}'\nplain: x\n"
            },
        )
        env = (await cfg.client.get("/catalog/default")).json()
        source = env["propertySources"][0]["source"]
        assert source == {"db.password": "p4ss-w0rd", "invalid.db.other": "<n/a>", "plain": "x"}
        assert "cannot decrypt db.other" in cfg.logs
        assert "other-secret-value" not in cfg.logs
        assert "p4ss-w0rd" not in cfg.logs
        view = await cfg.client.get("/ops/config", headers=operator_headers(), auth=None)  # not basic
        assert view.status_code == 200
        assert "p4ss-w0rd" not in view.text


async def test_dev_key_status_warns(git_repo: Any, config_app: Any) -> None:
    async with config_app(git_repo.root) as cfg:
        assert "warning" in (await cfg.client.get("/encrypt/status")).json()


async def test_malformed_yaml_keeps_the_last_good_version(git_repo: Any, config_app: Any) -> None:
    good = git_repo.commit("init", **BASE)
    bad = git_repo.commit(
        "oops", **{"catalog.yml": "http:\n  timeout_s: [unclosed\n", "reviews.yml": "owner: r2\n"}
    )
    async with config_app(git_repo.root) as cfg:
        env = (await cfg.client.get("/catalog/default")).json()
        assert env["version"] == bad
        catalog = next(ps for ps in env["propertySources"] if ps["name"].endswith("/catalog.yml"))
        assert catalog["source"]["owner"] == "catalog"  # the last good version
        reviews = (await cfg.client.get("/reviews/default")).json()["propertySources"][0]["source"]
        assert reviews == {"owner": "r2"}  # other files of that commit are served
        ready = await cfg.client.get("/health/ready")
        assert ready.status_code == 200
        malformed = ready.json()["checks"]["repository"]["malformed"]
        assert [(m["path"], m["commit"], m["serving"]) for m in malformed] == [
            (f"{SP}/catalog.yml", bad, good)
        ]
        assert "invalid YAML at line" in malformed[0]["error"]
        assert f"{SP}/catalog.yml" in cfg.logs
        assert "last good version" in cfg.logs
        git_repo.commit("fixed", **{"catalog.yml": "owner: fixed\n"})
        ready = await cfg.client.get("/health/ready")
        assert ready.json()["checks"]["repository"]["malformed"] == []


async def test_archive_without_git_is_served_with_version_null(tmp_path: Path, config_app: Any) -> None:
    folder = tmp_path / "archive" / SP
    folder.mkdir(parents=True)
    (folder / "catalog.yml").write_text("owner: plain\n")
    async with config_app(tmp_path / "archive") as cfg:
        env = (await cfg.client.get("/catalog/default")).json()
        assert env["version"] is None
        assert env["propertySources"][0]["source"] == {"owner": "plain"}
        assert (await cfg.client.get("/catalog/default/main")).status_code == 404
        details = (await cfg.client.get("/health/ready")).json()["checks"]["repository"]
        assert details["backend"] == "native"
        assert "no .git" in details["note"]


async def test_repository_by_url_is_cloned(git_repo: Any, config_app: Any, tmp_path: Path) -> None:
    first = git_repo.commit("init", **BASE)
    async with config_app(f"file://{git_repo.root}", config_clone_dir=tmp_path / "clones") as cfg:
        assert (await cfg.client.get("/catalog/default")).json()["version"] == first


async def test_monitor_webhook_names_the_changed_apps(
    git_repo: Any, config_app: Any, refresh_events: Any
) -> None:
    sha = git_repo.commit("init", **BASE)
    github_push = {
        "ref": "refs/heads/main",
        "commits": [{"added": [], "removed": [], "modified": [f"{SP}/catalog-docker.yml", "README.md"]}],
    }
    async with config_app(git_repo.root) as cfg:

        async def push() -> None:
            response = await cfg.client.post("/monitor", json=github_push, headers={"X-Github-Event": "push"})
            assert response.json() == ["catalog", "catalog-docker"]
            response = await cfg.client.post("/monitor", data={"path": "reviews"})
            assert response.json() == ["reviews"]
            response = await cfg.client.post(
                "/monitor", json={"commits": [{"modified": [f"{SP}/application.yml"]}]}
            )
            assert response.json() == ["*"]
            response = await cfg.client.post("/monitor", json={"commits": [{"modified": ["src/app.py"]}]})
            assert response.json() == []  # nothing published

        events = await refresh_events(push, 3, startup=False)
        assert [(e["apps"], e["version"]) for e in events] == [
            (["catalog", "catalog-docker"], sha),
            (["reviews"], sha),
            (["*"], sha),
        ]
        assert (await cfg.client.post("/monitor", json=github_push, auth=None)).status_code == 401
        assert (await cfg.client.post("/monitor", content=b"{not json")).status_code == 400


async def test_polling_publishes_a_commit_for_the_apps_it_touches(
    git_repo: Any, refresh_events: Any, config_app: Any
) -> None:
    git_repo.commit("init", **BASE)

    async def run() -> None:
        async with config_app(git_repo.root, config_poll_interval_s=0.2):
            await asyncio.sleep(0.5)
            git_repo.commit("reviews only", **{"reviews.yml": "owner: r3\n"})
            await asyncio.sleep(1.0)
            git_repo.commit("shared", **{"application-docker.yml": "shared: again\n"})
            await asyncio.sleep(1.0)

    events = await refresh_events(run, 3)
    assert events[0]["apps"] == ["*"]
    assert events[0]["reason"] == "config-service started"
    assert events[1]["apps"] == ["reviews"]
    assert events[2]["apps"] == ["*"]
    assert events[2]["version"] == git_repo.git("rev-parse", "HEAD")


async def test_openapi_still_served(git_repo: Any, config_app: Any) -> None:
    async with config_app(git_repo.root) as cfg:
        response = await cfg.client.get("/openapi.json", auth=None)
        assert response.status_code == 200
        assert "/{app}/{profiles}/{label}" in response.json()["paths"]


def test_httpx_keeps_encoded_dots() -> None:
    # The traversal cases above rely on the client sending %2E%2E as is.
    assert httpx.URL("http://x/%2E%2E/default").raw_path == b"/%2E%2E/default"


async def test_unreadable_repository_is_reported_and_retried(git_repo: Any, config_app: Any) -> None:
    sha = git_repo.commit("init", **BASE)
    missing = git_repo.root.parent / "mounted-later"
    async with config_app(missing) as cfg:
        ready = await cfg.client.get("/health/ready")
        assert ready.status_code == 503
        assert "is not a folder" in ready.json()["checks"]["repository"]["error"]
        read = await cfg.client.get("/catalog/default")
        assert read.status_code == 503
        assert read.headers["content-type"] == "application/problem+json"
        git_repo.root.rename(missing)  # the mount appears
        for _ in range(80):  # reopened with backoff (1 s, 2 s, ...)
            if (await cfg.client.get("/health/ready")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert (await cfg.client.get("/catalog/default")).json()["version"] == sha


async def test_worktree_without_its_git_dir_says_why(tmp_path: Path, config_app: Any) -> None:
    checkout = tmp_path / "worktree"
    checkout.mkdir()
    (checkout / ".git").write_text("gitdir: /elsewhere/.git/worktrees/x\n")
    async with config_app(checkout) as cfg:
        error = (await cfg.client.get("/health/ready")).json()["checks"]["repository"]["error"]
        assert "not mounted" in error


def test_accepted_clients_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from config_service.settings import Settings

    monkeypatch.setenv("CONFIG_CLIENTS", "catalog:pw-1, orders:pw:2")
    clients = Settings().config_clients
    assert {user: pw.get_secret_value() for user, pw in clients.items()} == {
        "catalog": "pw-1",
        "orders": "pw:2",
    }
    monkeypatch.setenv("CONFIG_CLIENTS", '{"a": "b"}')
    assert Settings().config_clients["a"].get_secret_value() == "b"
    monkeypatch.setenv("CONFIG_CLIENTS", "no-password")
    with pytest.raises(ValueError, match="user:password"):
        Settings()


async def test_git_gc_underneath_a_running_service(git_repo: Any, config_app: Any) -> None:
    git_repo.commit("init", **BASE)
    async with config_app(git_repo.root) as cfg:
        assert (await cfg.client.get("/catalog/default")).status_code == 200
        git_repo.git("gc", "-q", "--prune=now")  # loose objects and refs move into packs
        sha = git_repo.commit("after gc", **{"catalog.yml": "owner: packed\n"})
        git_repo.git("gc", "-q", "--prune=now")
        env = (await cfg.client.get("/catalog/default")).json()
        assert env["version"] == sha
        assert env["propertySources"][0]["source"] == {"owner": "packed"}
