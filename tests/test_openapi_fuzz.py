"""Schemathesis on every service's OpenAPI document, against the real services (issue 11).

Each of the nine services is fuzzed from its own ``/openapi.json`` with the checks
``not_a_server_error``, ``response_schema_conformance`` and ``status_code_conformance``: no 5xx,
every answer matches its documented schema, and every status is documented. The documents come
from one place (``chassis.openapi``): problem+json answers, security schemes, required headers.

Credentials, as a client of each service would hold them:
- domain services and gateway-mobile: an admin's bearer token;
- gateway-web: the admin's session cookie and its CSRF header;
- auth-service: the ``mobile`` OAuth client (Basic); config-service: the ``config-client`` (Basic);
- ``/ops/config`` of every service: the operator token.
Operations that end the credentials they are called with (logout, revoke) run last, on their own.

Examples per operation: ``MSA_FUZZ_EXAMPLES`` (default 15); seed: ``MSA_FUZZ_SEED`` (a fixed
default, so CI is reproducible; any other seed explores other inputs).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from chassis.ops import DEV_OPS_TOKEN
from msa_testing.containers import own_services, read_model
from msa_testing.figures import Figures
from msa_testing.fixtures import Topology

pytestmark = pytest.mark.system

SERVICES = own_services(read_model())  # every Python service docker-compose.yml builds
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"
EXAMPLES = int(os.environ.get("MSA_FUZZ_EXAMPLES", "15"))
SEED = int(os.environ.get("MSA_FUZZ_SEED", "20261202"))
ENDS_CREDENTIALS = r"/(logout|revoke)$"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@dataclass
class Run:
    service: str
    part: str
    returncode: int
    output: str
    generated: int = field(init=False)
    operations: int = field(init=False)

    def __post_init__(self) -> None:
        found = re.search(r"(\d+) generated", self.output)
        tested = re.search(r"Tested: (\d+)", self.output)
        self.generated = int(found.group(1)) if found else 0
        self.operations = int(tested.group(1)) if tested else 0


def schemathesis(url: str, service: str, part: str, args: list[str], workdir: Path) -> Run:
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{url}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(EXAMPLES),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        str(SEED),
        "--generation-database",
        ":memory:",
        "--request-timeout",
        "10",
        "--no-color",
        *args,
    ]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600, check=False)
    return Run(service, part, done.returncode, done.stdout + done.stderr)


def credentials(topo: Topology) -> dict[str, list[str]]:
    """What each service's clients hold; a service not named here (a new one) gets a bearer token."""
    mobile, web = topo.url("gateway-mobile"), topo.url("gateway-web")
    admin = {"username": "admin", "password": "admin-password"}
    token = httpx.post(f"{mobile}/auth/token", json=admin, timeout=10).json()["access_token"]
    login = httpx.post(f"{web}/auth/login", json=admin, timeout=10)
    bearer = ["-H", f"Authorization: Bearer {token}"]
    cookie = ["-H", f"Cookie: msa_session={login.cookies['msa_session']}"]
    return dict.fromkeys(SERVICES, bearer) | {
        "config-service": ["--auth", "config-client:dev-only-config-client-password"],
        "auth-service": ["--auth", "mobile:dev-only-mobile-secret"],
        "gateway-web": [*cookie, "-H", f"X-CSRF-Token: {login.json()['csrf_token']}"],
        "ops-dashboard": [],
    }


def test_every_service_honours_its_openapi_document(
    make_topology: Callable[..., Topology], tmp_path: Path, figures: Figures
) -> None:
    topology = make_topology()  # its own: the fuzzing writes products, orders and reviews
    runs: list[Run] = []
    creds = credentials(topology)
    operator = ["-H", f"Authorization: Bearer {DEV_OPS_TOKEN}", "--include-path", "/ops/config"]
    for service in SERVICES:
        url = topology.url(service)
        runs.append(
            schemathesis(
                url,
                service,
                "operations",
                [*creds[service], "--exclude-path", "/ops/config", "--exclude-path-regex", ENDS_CREDENTIALS],
                tmp_path,
            )
        )
        runs.append(schemathesis(url, service, "/ops/config", operator, tmp_path))
    # last: logout and revoke end the sessions the runs above used
    for service in ("gateway-web", "gateway-mobile", "auth-service"):
        args = [*creds[service], "--include-path-regex", ENDS_CREDENTIALS]
        runs.append(schemathesis(topology.url(service), service, "logout/revoke", args, tmp_path))

    lines = [
        f"{run.service:15} {run.part:14} {run.operations:3} operations {run.generated:5} cases  "
        + ("ok" if run.returncode == 0 else f"FAILED (exit {run.returncode})")
        for run in runs
    ]
    operations, cases = sum(run.operations for run in runs), sum(run.generated for run in runs)
    lines.append(f"total: {operations} operations, {cases} cases")
    figures.add(f"Schemathesis ({EXAMPLES} examples per operation, seed {SEED})", *lines)

    failed = [run for run in runs if run.returncode != 0]
    assert not failed, "\n\n".join(f"--- {run.service} {run.part}\n{run.output[-6000:]}" for run in failed)
    # every service was really exercised: each of its runs tested something
    assert all(run.operations > 0 and run.generated > 0 for run in runs), [
        (run.service, run.part) for run in runs if not run.generated
    ]
