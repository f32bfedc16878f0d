"""`msa dev up` restarts a service that exits, as compose's `restart: unless-stopped` does: with a
message, after a delay that doubles while it keeps exiting and starts over after a healthy run;
a service stopped on purpose stays stopped. Real processes throughout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from msa_cli.devstack import DevStack

# Addresses nothing listens on: the stack then starts no redis-server and no Zipkin of its own.
NO_REDIS = "redis://127.0.0.1:9/0"
NO_ZIPKIN = "http://127.0.0.1:9"


def _compose(folder: Path, commands: dict[str, str], **extra: Any) -> Path:
    services = {
        name: {"build": {"context": "."}, "command": ["python", "-c", code], **extra}
        for name, code in commands.items()
    }
    path = folder / "docker-compose.yml"
    path.write_text(yaml.safe_dump({"name": "t", "services": services}, sort_keys=False))
    return path


def _supervised(stack: DevStack, seconds: float) -> list[tuple[float, str]]:
    """Run ``stack.supervise()`` as `msa dev up` does (more often), collecting its messages."""
    seen: list[tuple[float, str]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen += [(time.monotonic(), message) for message in stack.supervise()]
        time.sleep(0.01)
    return seen


def test_a_crashing_service_is_restarted_with_a_doubling_delay(tmp_path: Path) -> None:
    file = _compose(tmp_path, {"crasher": "import sys; sys.exit(3)", "steady": "import time; time.sleep(60)"})
    stack = DevStack(
        compose_file=file, state_dir=tmp_path / "state", free_ports=True, redis_url=NO_REDIS,
        zipkin_url=NO_ZIPKIN, restart_initial_s=0.2, restart_max_s=0.8, restart_stable_s=30.0,
    )  # fmt: skip
    try:
        stack.start()
        steady = stack.services["steady"].process
        seen = _supervised(stack, 3.5)
        assert stack.services["steady"].process is steady, "a running service is left alone"
    finally:
        stack.stop()
    messages = [message for _, message in seen]
    assert all(message.startswith("crasher ") for message in messages), messages
    exits = [message for message in messages if " exited" in message]
    assert exits[0].startswith("crasher exited (code 3); restarting in 0.2 s"), exits
    assert [message.split("restarting in ")[1].split(" s")[0] for message in exits[:4]] == [
        "0.2",
        "0.4",
        "0.8",
        "0.8",  # the ceiling
    ]
    assert all(" exited again (code 3)" in message for message in exits[1:4])
    assert str(stack.services["crasher"].log_file) in exits[0], "the message says where to look"
    restarted = [at for at, message in seen if " restarted (restart " in message]
    assert len(restarted) >= 3
    assert restarted[2] - restarted[1] >= 0.4, "the second restart waited longer than the first"


def test_a_healthy_run_resets_the_delay_and_a_stopped_service_stays_stopped(tmp_path: Path) -> None:
    file = _compose(
        tmp_path,
        {"flaky": "import sys, time; time.sleep(0.4); sys.exit(1)", "sleeper": "import time; time.sleep(60)"},
    )
    stack = DevStack(
        compose_file=file, state_dir=tmp_path / "state", free_ports=True, redis_url=NO_REDIS,
        zipkin_url=NO_ZIPKIN, restart_initial_s=0.1, restart_max_s=5.0, restart_stable_s=0.3,
    )  # fmt: skip
    try:
        stack.start()
        stack.stop_service("sleeper")
        seen = [message for _, message in _supervised(stack, 2.5)]
    finally:
        stack.stop()
    exits = [message for message in seen if " exited" in message]
    assert len(exits) >= 3, seen
    # each run lasted longer than restart_stable_s: the delay never grows
    assert all(message.startswith("flaky exited (code 1); restarting in 0.1 s") for message in exits), exits
    assert not [message for message in seen if message.startswith("sleeper")], "stopped on purpose"
    assert stack.services["sleeper"].process is None


SERVER = (
    "import http.server, os, pathlib\n"
    "pathlib.Path(os.environ['TMPDIR'], 'pid').write_text(str(os.getpid()))\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])),"
    " http.server.SimpleHTTPRequestHandler).serve_forever()\n"
)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _pid_and_url(state: Path, log: Path) -> tuple[int, str] | None:
    pid_file = state / "tmp" / "web" / "pid"
    printed = log.read_text()
    if "all services ready" not in printed or not pid_file.exists() or not pid_file.read_text():
        return None  # a service that exits before it is ready stops `msa dev up` (start-up failure)
    for line in printed.splitlines():  # the service table: "web  http://127.0.0.1:port  ..."
        if line.startswith("web "):
            url = line.split()[1]
            return (int(pid_file.read_text()), url) if _answers(url) else None
    return None


def _wait_for(what: str, check: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (found := check()) is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_msa_dev_up_restarts_a_service_that_was_killed(tmp_path: Path) -> None:
    healthcheck = {"test": ["CMD", "python", "-c", "x('http://127.0.0.1:8000/')"]}
    _compose(tmp_path, {"web": SERVER}, healthcheck=healthcheck)
    state, out, err = tmp_path / "state", tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("w") as stdout, err.open("w") as stderr:
        up = subprocess.Popen(
            [sys.executable, "-m", "msa_cli.main", "dev", "up", "--free-ports", "--redis-url", NO_REDIS,
             "--state-dir", str(state)],
            cwd=tmp_path, stdout=stdout, stderr=stderr,
        )  # fmt: skip
    try:
        first, url = _wait_for("web to answer", lambda: _pid_and_url(state, out))
        os.kill(first, signal.SIGKILL)
        second, _ = _wait_for(
            "web to be restarted",
            lambda: found if (found := _pid_and_url(state, out)) and found[0] != first else None,
        )
        assert up.poll() is None, "msa dev up keeps running"
        assert _answers(url)
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(30)
    assert code == 0
    assert second != first
    messages = err.read_text()
    assert "web exited (killed by SIGKILL); restarting in 1.0 s" in messages, messages
    assert "web restarted (restart 1)" in messages, messages


def test_a_restart_that_cannot_spawn_is_tried_again_and_stops_nothing(tmp_path: Path) -> None:
    file = _compose(tmp_path, {"crasher": "import sys; sys.exit(3)", "steady": "import time; time.sleep(60)"})
    stack = DevStack(
        compose_file=file, state_dir=tmp_path / "state", free_ports=True, redis_url=NO_REDIS,
        zipkin_url=NO_ZIPKIN, restart_initial_s=0.1, restart_max_s=0.4, restart_stable_s=30.0,
    )  # fmt: skip
    real_start = stack.start_service
    failures = []

    def start_service(name: str) -> None:
        if name == "crasher" and not failures:  # e.g. the interpreter vanished for a moment
            failures.append(name)
            raise OSError("[Errno 2] No such file or directory")
        real_start(name)

    try:
        stack.start()
        steady = stack.services["steady"].process
        stack.start_service = start_service  # type: ignore[method-assign]
        messages = [message for _, message in _supervised(stack, 1.5)]
        assert stack.services["steady"].process is steady
        assert steady is not None
        assert steady.poll() is None, "the rest of the stack keeps running"
    finally:
        stack.stop()
    assert any("could not be started" in m and "trying again" in m for m in messages), messages
    assert any(m == "crasher restarted (restart 1)" for m in messages), messages
