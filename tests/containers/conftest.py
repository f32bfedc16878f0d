"""The containers tier: the platform built and started with `docker compose up --build --wait`
from a throwaway copy of the working tree, tests against the running containers, `down -v` at
the end. A failed test leaves every container's log in test-artifacts/containers/<test>/.

Needs a Docker engine with Compose v2 (on a laptop without one the tier skips and says how to get
it; in CI, MSA_STRICT=1, it fails). Without their images, the ELK services are left out and the
tests marked ``elk`` are deselected, and the run says so.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from msa_testing.containers import (
    ELK_SERVICES,
    ComposeStack,
    copy_working_tree,
    docker_problem,
    missing_elk_images,
    read_model,
)
from msa_testing.infra import require_infra

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "containers"
_stack: ComposeStack | None = None
_summary: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    ours = [item for item in items if here in Path(str(item.path)).parents]
    for item in ours:
        item.add_marker(pytest.mark.containers)
    elk = [item for item in ours if item.get_closest_marker("elk")]
    if not elk or docker_problem() is not None:
        return
    missing = missing_elk_images(read_model())
    if missing:
        config.hook.pytest_deselected(items=elk)
        items[:] = [item for item in items if item not in elk]
        _summary.append(
            f"left out: {', '.join(ELK_SERVICES)} and {len(elk)} ELK tests: no image for {', '.join(missing)} "
            "(no registry reachable, no stand-in possible)"
        )


def _busy_ports(stack: ComposeStack) -> list[int]:
    busy = []
    for name in stack.services:
        for port in stack.model[name].get("ports") or []:
            with socket.socket() as probe:
                # as a listening server would: connections still in TIME_WAIT do not count
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("0.0.0.0", int(port["published"])))
                except OSError:
                    busy.append(int(port["published"]))
    return busy


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    """The running platform (the services ``stack.services`` names, healthy), shared by the tier.

    A test that stops, pauses or disconnects something restores it before it ends."""
    global _stack
    problem = docker_problem()
    if problem:
        require_infra(f"containers tier: {problem}")
    copy = copy_working_tree(tmp_path_factory.mktemp("stack-copy"))
    compose = ComposeStack(copy)
    compose.down("-v")  # what a killed earlier run left behind
    busy = _busy_ports(compose)
    if busy:
        require_infra(
            f"containers tier: host ports {busy} are taken (is your own stack up? `docker compose down`)"
        )
    started = time.monotonic()
    compose.build()
    built = time.monotonic()
    _stack = compose
    try:
        compose.up()
    except BaseException:
        compose.save_logs(ARTIFACTS / "up")
        compose.down("-v")
        raise
    healthy = time.monotonic()
    _summary.append(
        f"stack: {len(compose.services)} services from a copy of the working tree; build {built - started:.0f} s, "
        f"up --wait to all healthy {healthy - built:.0f} s"
    )
    if compose.left_out and not any(line.startswith("left out") for line in _summary):
        _summary.append(f"left out: {', '.join(compose.left_out)}: {next(iter(compose.left_out.values()))}")
    yield compose
    _stack = None
    compose.down("-v")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and _stack is not None and "stack" in getattr(item, "fixturenames", ()):
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid.split("::", 1)[-1])
        _stack.save_logs(ARTIFACTS / f"{name}-{report.when}")
        report.sections.append(("containers' warnings and errors", _stack.problems(call.start)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    outcomes: dict[str, str] = {}  # test -> its worst outcome over setup, call and teardown
    for outcome in ("passed", "skipped", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if "tests/containers/" in getattr(report, "nodeid", ""):
                outcomes[report.nodeid] = "failed" if outcome == "error" else outcome
    if not outcomes and not _summary:
        return
    terminalreporter.section("containers tier")
    for line in _summary:
        terminalreporter.write_line(line)
    counts = {
        outcome: sum(o == outcome for o in outcomes.values()) for outcome in ("passed", "failed", "skipped")
    }
    terminalreporter.write_line(
        f"container tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
    )
