"""`msa doctor` reports what is installed as ok and what is not on PATH as missing, with a hint."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


def _doctor(path: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        [sys.executable, "-m", "msa_cli.main", "doctor", *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _row(output: str, name: str) -> str:
    rows = [line for line in output.splitlines() if re.split(r"\s{2,}", line)[0] == name]
    assert len(rows) == 1, output
    return rows[0]


def test_doctor_reports_installed_and_missing_tools(tmp_path: Path) -> None:
    redis = shutil.which("redis-server")
    assert redis, "redis-server is installed on every test machine (scripts/test.sh)"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "redis-server").symlink_to(redis)  # this PATH has redis-server and nothing else

    done = _doctor(str(bin_dir))

    assert done.returncode == 0, done.stderr
    assert " ok " in _row(done.stdout, "redis-server")
    docker = _row(done.stdout, "docker")
    assert " missing " in docker
    assert "apt-get install -y docker.io" in docker
    assert " missing " in _row(done.stdout, "uv")
    assert "not ok:" in done.stdout


def test_doctor_strict_fails_when_something_is_missing(tmp_path: Path) -> None:
    done = _doctor(str(tmp_path), "--strict")  # an empty PATH: every tool is missing
    assert done.returncode == 1
    assert " missing " in _row(done.stdout, "redis-server")
