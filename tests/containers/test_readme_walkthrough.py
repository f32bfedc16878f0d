"""README.md's walkthrough, executed as written against the running containers, every step checked.

The ```sh blocks under **Web**, **Mobile** and **Break something** are taken from README.md, split
into commands (continuation lines joined) and run one after another in one bash, in a scratch
directory for the web block's cookie jar, and for the last block in the stack's own copy of the
repository (its `docker compose` addresses the test's project; its `git commit` changes the
config that the running config-service serves). Each command must match exactly one check below
and every check must be used, so the README cannot drift from the product without this failing.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from msa_testing.containers import ComposeStack
from msa_testing.polling import wait_until

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(title: str) -> list[str]:
    """The commands of the first ```sh block after the paragraph starting with **title**."""
    text = README.read_text()
    match = re.search(rf"^\*\*{re.escape(title)}.*?^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no ```sh block under **{title}**"
    commands, current = [], ""
    for line in match.group(1).splitlines():
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip() and not current.lstrip().startswith("#"):
            commands.append(current.strip())
        current = ""
    return commands


@dataclass
class Step:
    command: str
    output: str
    status: int
    variables: dict[str, str]


class Shell:
    """One bash process for a whole block: variables and the cookie jar carry from step to step."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self, command: str, timeout_s: float = 60) -> Step:
        assert self.process.stdin
        assert self.process.stdout
        marker = f"__step_{time.monotonic_ns()}__"
        assigned = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=", command)
        # After the command: a newline (output may lack one), the variable it set, its exit status.
        show = f'; printf "{marker}var %s\\n" "${assigned.group(1)}"' if assigned else ""
        self.process.stdin.write(f'{command}\n__rc=$?; echo{show}; printf "{marker}rc %s\\n" "$__rc"\n')
        self.process.stdin.flush()
        lines: list[str] = []
        variables: dict[str, str] = {}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"bash ended during: {command}\n{''.join(lines)}")
            if assigned and line.startswith(f"{marker}var "):
                variables[assigned.group(1)] = line[len(marker) + 4 :].rstrip("\n")
            elif line.startswith(f"{marker}rc "):
                return Step(command, "".join(lines).strip(), int(line.split()[1]), variables)
            else:
                lines.append(line)
        raise AssertionError(f"step took over {timeout_s} s: {command}")

    def close(self) -> None:
        self.process.kill()
        self.process.communicate(timeout=10)


Check = Callable[[Step, dict[str, Any]], None]


def run_block(title: str, shell: Shell, checks: list[tuple[str, Check]]) -> None:
    """Each command of the block, then the one check whose pattern it matches."""
    commands = readme_block(title)
    used: set[str] = set()
    state: dict[str, Any] = {}
    for command in commands:
        matching = [(pattern, check) for pattern, check in checks if re.search(pattern, command)]
        assert len(matching) == 1, f"README step without exactly one check ({len(matching)}): {command}"
        pattern, check = matching[0]
        used.add(pattern)
        step = shell.run(command)
        assert step.status == 0, f"exit {step.status}: {command}\n{step.output}"
        try:
            check(step, state)
        except AssertionError as exc:
            raise AssertionError(
                f"README step failed: {command}\noutput: {step.output[:1500]}\n{exc}"
            ) from exc
    stale = {pattern for pattern, _ in checks} - used
    assert not stale, f"checks for steps no longer in README.md: {stale}"


def _json(step: Step) -> Any:
    return json.loads(step.output)


@pytest.fixture
def shell(tmp_path: Path, stack: ComposeStack) -> Any:
    shells: list[Shell] = []

    # The break block commits: a user has a git identity, a fresh CI machine may not.
    identity = {f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER")
                for what, value in (("NAME", "msa tests"), ("EMAIL", "tests@msa.invalid"))}  # fmt: skip

    def make(cwd: Path = tmp_path) -> Shell:
        shells.append(Shell(cwd, stack.env | identity))
        return shells[-1]

    yield make
    for opened in shells:
        opened.close()


def test_web_walkthrough(stack: ComposeStack, shell: Callable[..., Shell]) -> None:
    def listing(step: Step, state: dict[str, Any]) -> None:
        body = _json(step)
        assert 1 <= len(body["items"]) <= 3
        for item in body["items"]:
            assert {"price", "rating"} <= set(item), item
            assert "tent" in json.dumps(item).lower(), item
            assert "available" in item or "in_stock" in item or "stock" in item, item

    def page(step: Step, state: dict[str, Any]) -> None:
        assert step.output.startswith("HTTP/1.1 200"), step.output[:200]
        assert "content-type: application/json" in step.output.lower()

    def login(step: Step, state: dict[str, Any]) -> None:
        assert _json(step)["csrf_token"]

    def csrf(step: Step, state: dict[str, Any]) -> None:
        assert len(step.variables["CSRF"]) >= 16, "the CSRF cookie is in the jar"

    def me(step: Step, state: dict[str, Any]) -> None:
        assert "alice" in json.dumps(_json(step))

    def order(step: Step, state: dict[str, Any]) -> None:
        body = _json(step)
        assert body["id"], body
        assert [line["product_id"] for line in body["lines"]] == ["p-1001"]
        state["order"] = body["id"]

    def orders(step: Step, state: dict[str, Any]) -> None:
        body = _json(step)
        listed = [o for o in body["items"] if o["id"] == state["order"]]
        assert listed, f"order {state['order']} not listed"
        assert "Trail Running Shoe" in json.dumps(listed[0]), "orders come with product names"

    def logout(step: Step, state: dict[str, Any]) -> None:
        assert step.output == "204"

    run_block(
        "Web",
        shell(),
        [
            (r"/api/products\?size=3&q=tent", listing),
            (r"curl -si .*/api/products/p-1001", page),
            (r"/auth/login", login),
            (r"^CSRF=", csrf),
            (r"/auth/me", me),
            (r"-d .*lines.* localhost:8080/api/orders", order),
            (r"-b jar localhost:8080/api/orders +#", orders),
            (r"/auth/logout", logout),
        ],
    )


def test_mobile_walkthrough(stack: ComposeStack, shell: Callable[..., Shell]) -> None:
    def token(step: Step, state: dict[str, Any]) -> None:
        assert step.variables["TOKEN"].count(".") == 2, "a JWT"

    def listing(step: Step, state: dict[str, Any]) -> None:
        body = _json(step)
        assert len(body["items"]) == 5
        assert body["next_cursor"]

    def product(step: Step, state: dict[str, Any]) -> None:
        body = _json(step)
        assert body["id"] == "p-1001"
        assert body["rating"]["count"] >= 1
        assert body["top_review"]["rating"] >= 1

    def order(step: Step, state: dict[str, Any]) -> None:
        body = _json(step)
        state["order"] = body["id"]

    def orders(step: Step, state: dict[str, Any]) -> None:
        assert state["order"] in step.output

    run_block(
        "Mobile",
        shell(),
        [
            (r"^TOKEN=", token),
            (r"/m/products\?limit=5", listing),
            (r"/m/products/p-1001", product),
            (r"-d .*lines.* localhost:8081/m/orders", order),
            (r"Bearer \$TOKEN\" localhost:8081/m/orders$", orders),
        ],
    )


def _page(stack: ComposeStack) -> httpx.Response:
    return httpx.get(f"{stack.url('gateway-web')}/api/products/p-1001", timeout=10)


def test_break_something_and_watch_it_degrade(stack: ComposeStack, shell: Callable[..., Shell]) -> None:
    """Run in the stack's own copy: `docker compose stop reviews` stops this test's reviews, and
    the `git commit` lands in the repository its config-service serves."""

    def degraded(step: Step, state: dict[str, Any]) -> None:
        answer = _page(stack)
        assert answer.status_code == 200
        assert answer.json()["degraded"] == ["reviews"]
        assert answer.headers["X-Degraded"] == "reviews"

    def whole_again(step: Step, state: dict[str, Any]) -> None:
        # Reviews answers again once its breaker lets a trial call through.
        wait_until(
            "full product pages", lambda: _page(stack).json()["degraded"] == [], timeout_s=60, every_s=1
        )

    def broken_by_config(step: Step, state: dict[str, Any]) -> None:
        assert stack.git("log", "-1", "--format=%s") == "break reviews"
        wait_until(
            "reviews failing after the config commit",
            lambda: _page(stack).json()["degraded"] == ["reviews"],
            timeout_s=30,
            every_s=0.5,
        )

    run_block(
        "Break something",
        shell(stack.directory),
        [
            (r"docker compose stop reviews", degraded),
            (r"docker compose start reviews", whole_again),
            (r"^sed -i .*error_rate: 1\.0.*git commit", broken_by_config),
            (r"^git revert", whole_again),
        ],
    )
