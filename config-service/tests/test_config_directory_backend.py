"""The ``dir:`` backend over a real directory laid out as the kubelet lays out a ConfigMap volume,
with the app in-process and its refresh events on a real Redis."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chassis.state import resource
from config_service.environment.repository import (
    DirectoryRepository,
    NativeRepository,
    RepositoryError,
    UnknownLabel,
    open_repository,
)
from config_service.settings import Settings
from config_service.store import ConfigStore

FILES = {
    "application.yml": "shared: from-application\n",
    "catalog.yml": "owner: catalog\n",
    "catalog-docker.yml": "breaker:\n  fail_max: 9\n",
    "reviews.yml": "owner: reviews\n",
}
FLAT = "/"  # CONFIG_SEARCH_PATHS of a flat ConfigMap: the top of the directory


class ConfigMapVolume:
    """A ConfigMap volume written the kubelet's way (its AtomicWriter): the files go into a new
    ``..<timestamp>`` directory, a ``..data_tmp`` symlink to it is renamed over ``..data``, each key
    gets a ``key -> ..data/key`` symlink (keys gone lose theirs), then the previous directory goes."""

    def __init__(self, root: Path) -> None:
        root.mkdir()
        self.root = root

    def publish(self, files: dict[str, str]) -> Path:
        stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime())
        new = self.root / f"..{stamp}.{time.time_ns() % 10**9:09d}"
        while new.exists():
            new = new.with_name(f"{new.name}1")
        new.mkdir()
        for key, text in files.items():
            (new / key).write_text(text)
        data = self.root / "..data"
        previous = self.root / os.readlink(data) if data.is_symlink() else None
        tmp = self.root / "..data_tmp"
        os.symlink(new.name, tmp)
        os.replace(tmp, data)  # the atomic swap
        for key in files:
            if not (self.root / key).is_symlink():
                os.symlink(f"..data/{key}", self.root / key)
        for entry in self.root.iterdir():
            if not entry.name.startswith("..") and entry.name not in files:
                entry.unlink()
        if previous is not None:
            shutil.rmtree(previous)
        return new


@pytest.fixture
def volume(tmp_path: Path) -> ConfigMapVolume:
    return ConfigMapVolume(tmp_path / "config")


def open_dir(root: Path) -> DirectoryRepository:
    repository = open_repository(f"dir:{root}", default_label="main", clone_dir=root.parent / "clones")
    assert isinstance(repository, DirectoryRepository)
    return repository


def names(env: dict[str, Any]) -> list[str]:
    return [ps["name"] for ps in env["propertySources"]]


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s")


async def test_a_configmap_volume_is_served_with_a_content_version(
    volume: ConfigMapVolume, tmp_path: Path, config_app: Any
) -> None:
    volume.publish(FILES)
    uri = f"dir:{volume.root}"
    async with config_app(uri, config_search_paths=FLAT) as cfg:
        env = (await cfg.client.get("/catalog/docker")).json()
        version = env["version"]
        assert re.fullmatch(r"[0-9a-f]{40}", version), version
        assert names(env) == [f"{uri}/catalog-docker.yml", f"{uri}/catalog.yml", f"{uri}/application.yml"]
        assert env["propertySources"][0]["source"] == {"breaker.fail_max": 9}
        assert (await cfg.client.get("/reviews/default")).json()["version"] == version  # one per directory
        merged = await cfg.client.get("/catalog-docker.yml")
        assert merged.status_code == 200
        assert "owner: catalog" in merged.text
        labelled = await cfg.client.get("/catalog/docker/main")
        assert labelled.status_code == 404
        assert labelled.json()["title"] == "Unknown label"
        ready = (await cfg.client.get("/health/ready")).json()["checks"]["repository"]
        assert (ready["backend"], ready["uri"], ready["version"]) == (
            "directory",
            f"dir:{volume.root.resolve()}",
            version,
        )
        assert "content hash" in ready["note"]
        assert ready["malformed"] == []
        assert "CONFIG_SEARCH_PATHS" not in cfg.logs

    # The version is the content's, not the directory's nor the update's: the same files elsewhere,
    # written at another time, have the same version.
    elsewhere = ConfigMapVolume(tmp_path / "elsewhere")
    elsewhere.publish(FILES)
    async with config_app(f"dir:{elsewhere.root}", config_search_paths=FLAT) as cfg:
        assert (await cfg.client.get("/catalog/docker")).json()["version"] == version


async def test_the_default_search_path_on_a_flat_volume_is_warned_about(
    volume: ConfigMapVolume, config_app: Any
) -> None:
    volume.publish(FILES)
    async with config_app(f"dir:{volume.root}", config_search_paths="deploy/config-repo") as cfg:
        assert (await cfg.client.get("/catalog/default")).json()["propertySources"] == []
        assert "set CONFIG_SEARCH_PATHS=/" in cfg.logs


async def test_a_swap_refreshes_exactly_the_affected_apps(
    volume: ConfigMapVolume, config_app: Any, refresh_events: Any
) -> None:
    volume.publish(FILES)
    versions: list[str] = []

    async def run() -> None:
        async with config_app(
            f"dir:{volume.root}", config_search_paths=FLAT, config_poll_interval_s=0.1
        ) as cfg:
            monitor = resource(cfg.app, ConfigStore).monitor
            assert monitor is not None
            await until(lambda: monitor.published == 1)  # the start-up announcement
            first = (await cfg.client.get("/catalog/docker")).json()

            volume.publish({**FILES, "reviews.yml": "owner: reviews-2\n"})
            await until(lambda: monitor.published == 2)
            reviews = (await cfg.client.get("/reviews/default")).json()
            assert reviews["propertySources"][0]["source"] == {"owner": "reviews-2"}
            catalog = (await cfg.client.get("/catalog/docker")).json()
            assert catalog["version"] == reviews["version"] != first["version"]
            assert catalog["propertySources"] == first["propertySources"]
            versions.append(reviews["version"])

            without = {key: text for key, text in FILES.items() if key != "catalog-docker.yml"}
            volume.publish({**without, "reviews.yml": "owner: reviews-2\n"})
            await until(lambda: monitor.published == 3)
            catalog = (await cfg.client.get("/catalog/docker")).json()
            assert [name.rsplit("/", 1)[1] for name in names(catalog)] == ["catalog.yml", "application.yml"]
            versions.append(catalog["version"])

    events = await refresh_events(run, 2, startup=False)
    assert [(event["apps"], event["version"], event["reason"]) for event in events] == [
        (["reviews"], versions[0], "change"),
        (["catalog", "catalog-docker"], versions[1], "change"),  # a removed file refreshes its apps
    ]


async def test_an_unchanged_swap_keeps_the_version_and_publishes_nothing(
    volume: ConfigMapVolume, config_app: Any, refresh_events: Any
) -> None:
    first_dir = volume.publish(FILES)
    versions: list[str] = []

    async def run() -> None:
        async with config_app(
            f"dir:{volume.root}", config_search_paths=FLAT, config_poll_interval_s=0.1
        ) as cfg:
            monitor = resource(cfg.app, ConfigStore).monitor
            assert monitor is not None
            await until(lambda: monitor.published == 1)
            before = (await cfg.client.get("/catalog/default")).json()

            second_dir = volume.publish(dict(FILES))  # same bytes, new timestamped directory
            assert second_dir != first_dir
            assert not first_dir.exists()
            await asyncio.sleep(1.0)  # some ten polls
            after = (await cfg.client.get("/catalog/default")).json()
            assert after == before
            assert monitor.published == 1

            volume.publish({**FILES, "catalog.yml": "owner: catalog-2\n"})
            await until(lambda: monitor.published == 2)
            versions.append((await cfg.client.get("/catalog/default")).json()["version"])
            assert versions[0] != before["version"]

    # The next event after the start-up one is the real change's: the unchanged swap sent nothing.
    events = await refresh_events(run, 2)
    assert [(event["apps"], event["version"], event["reason"]) for event in events] == [
        (["*"], events[0]["version"], "config-service started"),
        (["catalog"], versions[0], "change"),
    ]


async def test_a_file_that_does_not_parse_keeps_its_last_good_version(
    volume: ConfigMapVolume, config_app: Any
) -> None:
    volume.publish(FILES)
    async with config_app(f"dir:{volume.root}", config_search_paths=FLAT) as cfg:
        good = (await cfg.client.get("/catalog/default")).json()["version"]
        volume.publish({**FILES, "catalog.yml": "owner: [unclosed\n", "reviews.yml": "owner: reviews-2\n"})
        env = (await cfg.client.get("/catalog/default")).json()
        bad = env["version"]
        assert bad != good
        assert env["propertySources"][0]["source"] == {"owner": "catalog"}  # as it was in `good`
        reviews = (await cfg.client.get("/reviews/default")).json()["propertySources"][0]["source"]
        assert reviews == {"owner": "reviews-2"}
        malformed = (await cfg.client.get("/health/ready")).json()["checks"]["repository"]["malformed"]
        assert [(m["path"], m["commit"], m["serving"]) for m in malformed] == [("catalog.yml", bad, good)]


def test_a_read_never_mixes_two_versions(volume: ConfigMapVolume) -> None:
    volume.publish(FILES)
    repository = open_dir(volume.root)
    old = repository.resolve(None).version
    assert old is not None
    volume.publish({**FILES, "catalog.yml": "owner: catalog-2\n", "reviews.yml": "owner: reviews-2\n"})
    # An answer being built at the old version keeps reading the old version, whose directory the
    # kubelet has removed by now...
    assert repository.read(old, "catalog.yml") == b"owner: catalog\n"
    assert repository.read(old, "reviews.yml") == b"owner: reviews\n"
    # ... while the next answer sees the new one, all of it.
    new = repository.resolve(None).version
    assert new is not None
    assert new != old
    assert repository.read(new, "catalog.yml") == b"owner: catalog-2\n"
    assert repository.read(new, "reviews.yml") == b"owner: reviews-2\n"
    assert repository.read(new, "application.yml") == FILES["application.yml"].encode()
    assert repository.changed_paths(old, new) == ["catalog.yml", "reviews.yml"]
    assert repository.changed_paths(new, new) == []


def test_changed_paths_from_a_forgotten_version_are_every_file(volume: ConfigMapVolume) -> None:
    volume.publish(FILES)
    repository = open_dir(volume.root)
    first = repository.resolve(None).version
    assert first is not None
    for n in range(10):  # more versions than are remembered
        volume.publish({**FILES, "reviews.yml": f"owner: reviews-{n}\n"})
        latest = repository.resolve(None).version
    assert latest is not None
    assert repository.read(first, "catalog.yml") is None  # forgotten
    assert repository.changed_paths(first, latest) == sorted(FILES)  # every app refreshes
    assert repository.changed_paths("0" * 40, latest) == sorted(FILES)


async def test_dotdot_entries_are_never_listed_or_served(
    volume: ConfigMapVolume, tmp_path: Path, config_app: Any
) -> None:
    data_dir = volume.publish(FILES)
    stale = volume.root / "..2026_01_01_00_00_00.000000001"  # left over by an interrupted update
    stale.mkdir()
    (stale / "catalog.yml").write_text("owner: stale\n")
    (stale / "orders.yml").write_text("owner: stale\n")
    os.symlink(stale.name, volume.root / "..data_tmp")
    (data_dir / "..orders.yml").write_text("owner: hidden\n")

    repository = open_dir(volume.root)
    version = repository.resolve(None).version
    assert repository.list_files(version, "") == sorted(FILES)
    for folder in ("..data", data_dir.name, stale.name, "..data_tmp"):
        assert repository.list_files(version, folder) == [], folder
        assert repository.read(version, f"{folder}/catalog.yml") is None, folder
    assert repository.read(version, "..orders.yml") is None
    assert repository.read(version, "catalog.yml") == b"owner: catalog\n"

    hidden = f"..data,{data_dir.name},{stale.name},..data_tmp"  # even when asked for
    async with config_app(f"dir:{volume.root}", config_search_paths=hidden) as cfg:
        for app in ("catalog", "orders"):
            env = (await cfg.client.get(f"/{app}/default")).json()
            assert env["propertySources"] == [], app
        ready = (await cfg.client.get("/health/ready")).json()["checks"]["repository"]
        assert ".." not in ready["uri"]

    # A plain directory (no ..data): its ..* entries are left out all the same.
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "catalog.yml").write_text("owner: plain\n")
    (plain / "..catalog.yml").write_text("owner: hidden\n")
    shutil.copytree(stale, plain / stale.name)
    repository = open_dir(plain)
    version = repository.resolve(None).version
    assert repository.list_files(version, "") == ["catalog.yml"]
    assert repository.list_files(version, stale.name) == []
    assert repository.read(version, f"{stale.name}/orders.yml") is None


async def test_a_path_escaping_the_root_is_refused(tmp_path: Path, config_app: Any) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "catalog.yml").write_text("owner: outside\n")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "reviews.yml").write_text("owner: reviews\n")
    os.symlink(outside / "catalog.yml", plain / "catalog.yml")
    os.symlink(outside, plain / "sub")
    os.symlink("loop", plain / "loop")  # a symlink loop is skipped too

    repository = open_dir(plain)
    version = repository.resolve(None).version
    assert repository.list_files(version, "") == ["reviews.yml"]
    assert repository.read(version, "catalog.yml") is None
    assert repository.read(version, "../outside/catalog.yml") is None
    assert repository.read(version, f"{outside}/catalog.yml") is None
    assert repository.list_files(version, "sub") == []
    assert repository.list_files(version, "../outside") == []

    async with config_app(f"dir:{plain}", config_search_paths="/,sub,../outside") as cfg:
        assert (await cfg.client.get("/catalog/default")).json()["propertySources"] == []
        reviews = (await cfg.client.get("/reviews/default")).json()["propertySources"]
        assert [ps["source"] for ps in reviews] == [{"owner": "reviews"}]

    # A ..data that points out of the root is not followed: reads are refused, readiness says why.
    hijacked = tmp_path / "hijacked"
    hijacked.mkdir()
    os.symlink(outside, hijacked / "..data")
    os.symlink("..data/catalog.yml", hijacked / "catalog.yml")
    with pytest.raises(RepositoryError, match="must point to a folder inside"):
        open_dir(hijacked).resolve(None)
    async with config_app(f"dir:{hijacked}", config_search_paths=FLAT) as cfg:
        read = await cfg.client.get("/catalog/default")
        assert read.status_code == 503
        assert read.headers["content-type"] == "application/problem+json"
        assert "outside" not in read.text
        ready = await cfg.client.get("/health/ready")
        assert ready.status_code == 503
        assert "must point to a folder inside" in ready.json()["checks"]["repository"]["error"]


async def test_a_volume_unreadable_at_start_up_is_announced_once_readable(
    volume: ConfigMapVolume, tmp_path: Path, config_app: Any, refresh_events: Any
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, volume.root / "..data")
    versions: list[str] = []

    async def run() -> None:
        async with config_app(
            f"dir:{volume.root}", config_search_paths=FLAT, config_poll_interval_s=0.1
        ) as cfg:
            monitor = resource(cfg.app, ConfigStore).monitor
            assert monitor is not None
            await until(lambda: monitor.published == 1)
            assert (await cfg.client.get("/catalog/default")).status_code == 503
            (volume.root / "..data").unlink()
            volume.publish(FILES)
            await until(lambda: monitor.published == 2)
            env = (await cfg.client.get("/catalog/default")).json()
            assert env["propertySources"][0]["source"] == {"owner": "catalog"}
            versions.append(env["version"])

    events = await refresh_events(run, 2)
    assert [(event["apps"], event["version"], event["reason"]) for event in events] == [
        (["*"], None, "config-service started"),
        (["*"], versions[0], "repository readable"),
    ]


def test_a_plain_directory_and_the_uri_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "catalog.yml").write_text("owner: one\n")
    (plain / "notes.txt").write_text("not configuration\n")
    monkeypatch.chdir(tmp_path)
    repository = open_repository("dir:plain", default_label="main", clone_dir=tmp_path / "clones")
    assert isinstance(repository, DirectoryRepository)
    assert repository.describe()["uri"] == f"dir:{plain.resolve()}"
    first = repository.resolve(None).version
    with pytest.raises(UnknownLabel):
        repository.resolve("main")
    assert list(repository.history(first, "catalog.yml", 10)) == []
    (plain / "notes.txt").write_text("still not configuration\n")
    assert repository.resolve(None).version == first  # only config files make the version
    (plain / "catalog.yml").write_text("owner: two\n")
    second = repository.resolve(None).version
    assert second != first
    assert repository.changed_paths(first, second) == ["catalog.yml"]
    assert repository.heads() == {"content": second}

    # The same folder without dir: is still the native backend.
    native = open_repository(str(plain), default_label="main", clone_dir=tmp_path / "clones")
    assert isinstance(native, NativeRepository)
    assert native.resolve(None).version is None
    for uri in ("dir:", "dir:missing"):
        with pytest.raises(RepositoryError):
            open_repository(uri, default_label="main", clone_dir=tmp_path / "clones")


@pytest.mark.parametrize(
    ("value", "paths"),
    [("/", [""]), (".", [""]), ("", [""]), ("/,config/", ["", "config"]), ("a,,b", ["a", "b"])],
)
def test_search_paths_for_a_flat_layout(value: str, paths: list[str]) -> None:
    assert Settings(config_search_paths=value).search_paths == paths
