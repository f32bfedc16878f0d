"""`msa demo` against the containers, told nothing: it finds the gateways through `docker compose
port` (run in the stack's checkout, for its project), walks through the platform and ends with
the links to open next."""

from __future__ import annotations

import subprocess
import sys

from msa_testing.containers import ComposeStack


def test_msa_demo_finds_the_containers_and_ends_with_three_links(stack: ComposeStack) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "msa_cli.main", "demo"],
        cwd=stack.directory,
        env=stack.env,  # COMPOSE_PROJECT_NAME: what a user's `docker compose up` would be named
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    web, dashboard, zipkin = (stack.url(name).replace("127.0.0.1", "localhost") for name in
                              ("gateway-web", "ops-dashboard", "zipkin"))  # fmt: skip
    assert f"platform: web {web}, mobile " in done.stdout
    assert "(from docker compose port)" in done.stdout
    assert f"1. the storefront (log in as alice / alice-password):  {web}/" in done.stdout
    assert f"2. the breaker wall (`uv run msa load` makes it move):  {dashboard}/" in done.stdout
    assert f"3. the product page's trace, hop by hop:                {zipkin}/zipkin/traces/" in done.stdout
    assert "demo complete." in done.stdout
