"""Adding a service is one folder, one compose entry, one config file (CONTRIBUTING.md).

On a copy of the working tree, ``scripts/new_service.py example`` writes those three and nothing
else is edited; then, as a person would run them:
- ``uv sync --all-packages``: the workspace picks the member up (members by glob);
- the house checks (compose model, settings vs compose, Dockerfile, import rules), the new
  service's own tests, ruff and mypy, all from the copy;
- ``msa dev up`` (the runner, in the copy's environment) starts it with config-service and the
  dashboard: it answers with the greeting its config file holds, and the dashboard lists it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from msa_testing.containers import copy_working_tree

pytestmark = pytest.mark.system

HOUSE_CHECKS = [
    "tests/test_compose_stack.py",
    "tests/test_compose_settings.py",
    "tests/test_dockerfiles.py",
    "tests/test_workspace_rules.py",
    "services/example/tests",
]

# Run with the copy's own interpreter: its venv has the example console script.
DEV_UP = """
import json, sys, tempfile
from pathlib import Path
import httpx
from msa_cli.devstack import DevStack
from msa_testing.polling import wait_until

stack = DevStack(
    compose_file=Path("docker-compose.yml").resolve(), state_dir=Path(tempfile.mkdtemp()),
    free_ports=True, zipkin_url="http://127.0.0.1:9", only={"config-service", "example", "ops-dashboard"},
)
stack.plan()
stack.start()
try:
    stack.wait_ready(timeout_s=120)
    greeting = httpx.get(stack.url("example") + "/greetings/ada", timeout=5).json()

    def listed():
        state = httpx.get(stack.url("ops-dashboard") + "/api/state", timeout=5).json()
        return {s["name"]: s["status"] for s in state["services"] if s["status"] == "up"}

    panel = wait_until("the dashboard to list every service", lambda: len(listed()) >= 3 and listed(), 30)
    print(json.dumps({"greeting": greeting, "panel": panel}))
finally:
    stack.stop()
"""


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def test_a_new_service_needs_one_folder_one_compose_entry_one_config_file(tmp_path: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to sync the copy's workspace"
    repo = copy_working_tree(tmp_path / "repo")
    # the copy gets an environment of its own, not the one running this test
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}}
    env["UV_PYTHON_DOWNLOADS"] = "never"

    _run([sys.executable, "scripts/new_service.py", "example"], repo, env)
    status = _run(["git", "status", "--porcelain", "--untracked-files=all"], repo, env).splitlines()
    changed = {line[3:] for line in status}
    assert changed - {p for p in changed if p.startswith("services/example/")} == {
        "deploy/config-repo/example.yml",  # new
        "docker-compose.yml",  # one entry added
    }, changed
    assert {"services/example/pyproject.toml", "services/example/src/example/main.py"} <= changed
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    _run([*git, "add", "-A"], repo, env)
    _run([*git, "commit", "-qm", "add example"], repo, env)  # config-service serves commits

    _run([uv, "sync", "--all-packages", "--python", sys.executable], repo, env)
    python = str(repo / ".venv" / "bin" / "python")
    assert "example" in (repo / "uv.lock").read_text()

    _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *HOUSE_CHECKS], repo, env)
    _run([python, "-m", "ruff", "check", "."], repo, env)
    mypy = _run([python, "-m", "mypy"], repo, env)
    assert "Success" in mypy

    result = json.loads(_run([python, "-c", DEV_UP], repo, env).strip().splitlines()[-1])
    assert result["greeting"] == {"greeting": "Welcome, ada!"}, "config-service served example.yml"
    assert result["panel"] == {"config-service": "up", "example": "up", "ops-dashboard": "up"}
