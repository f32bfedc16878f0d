"""The one-shot setup jobs (deploy/kibana/setup.py, deploy/elasticsearch/setup.py), run as the
compose job runs them (a Python process, configuration from the environment) against a stand-in
speaking the documented Kibana / Elasticsearch HTTP API on a loopback port.

The point is the failure path: Kibana's import answers HTTP 200 with ``success: false``, and the
job must exit non-zero and print the errors instead of reporting a dashboard that is not there.
And the start: the job imports once Kibana reports `available` or `degraded` (Kibana 8.15's import
works while degraded), never while core is unavailable. tests/test_elasticsearch_real.py runs
deploy/elasticsearch/setup.py against a real node.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
NDJSON = REPO / "deploy/kibana/saved-objects.ndjson"
OBJECT_COUNT = len(NDJSON.read_text().splitlines())


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StandIn:
    """Answers ``(method, path-without-query)`` from ``routes``; records every request."""

    routes: dict[tuple[str, str], Callable[[], tuple[int, Any]]]
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    state = StandIn(routes={})

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {key.lower(): value for key, value in self.headers.items()}
            state.requests.append(Recorded(self.command, self.path, headers, body))
            route = state.routes.get((self.command, self.path.split("?")[0]))
            status, payload = route() if route else (404, {"error": "no such route"})
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def run_job(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", ""), "SETUP_WAIT_ATTEMPTS": "5", "SETUP_WAIT_DELAY_S": "0.05"}
    return subprocess.run(
        [sys.executable, str(REPO / script)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def kibana_available() -> tuple[int, Any]:
    return 200, {"status": {"overall": {"level": "available"}}}


def _uploaded_file(request: Recorded) -> tuple[str | None, str | None, bytes]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode() + request.body
    )
    (part,) = list(message.iter_parts())
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return part.get_param("name", header="content-disposition"), part.get_filename(), payload


def test_kibana_setup_imports_the_ndjson_and_sets_the_default_data_view(stand_in: StandIn) -> None:
    stand_in.routes = {
        ("GET", "/api/status"): kibana_available,
        ("POST", "/api/saved_objects/_import"): lambda: (
            200,
            {"success": True, "successCount": OBJECT_COUNT},
        ),
        ("POST", "/api/data_views/default"): lambda: (200, {"acknowledged": True}),
    }
    result = run_job("deploy/kibana/setup.py", {"KIBANA_URL": stand_in.url})
    assert result.returncode == 0, result.stderr
    (upload,) = [r for r in stand_in.requests if r.path.startswith("/api/saved_objects/_import")]
    assert upload.path.endswith("?overwrite=true")
    assert upload.headers["kbn-xsrf"] == "true"
    field_name, filename, content = _uploaded_file(upload)
    assert field_name == "file"
    assert filename is not None
    assert filename.endswith(".ndjson")
    assert content == NDJSON.read_bytes()
    (default,) = [r for r in stand_in.requests if r.path == "/api/data_views/default"]
    assert json.loads(default.body) == {"data_view_id": "msa-logs", "force": True}
    assert default.headers["kbn-xsrf"] == "true"


def test_kibana_setup_fails_loudly_when_the_import_reports_success_false(stand_in: StandIn) -> None:
    error = {"id": "msa-vis-slowest-routes", "type": "visualization", "error": {"type": "missing_references"}}
    stand_in.routes = {
        ("GET", "/api/status"): kibana_available,
        # Kibana answers 200 even when objects fail: only the body tells.
        ("POST", "/api/saved_objects/_import"): lambda: (
            200,
            {"success": False, "successCount": OBJECT_COUNT - 1, "errors": [error]},
        ),
        ("POST", "/api/data_views/default"): lambda: (200, {}),
    }
    result = run_job("deploy/kibana/setup.py", {"KIBANA_URL": stand_in.url})
    assert result.returncode != 0
    assert "FAILED" in result.stderr
    assert "missing_references" in result.stderr
    assert "msa-vis-slowest-routes" in result.stderr
    assert not [r for r in stand_in.requests if r.path == "/api/data_views/default"]


def test_kibana_setup_fails_when_fewer_objects_were_imported(stand_in: StandIn) -> None:
    stand_in.routes = {
        ("GET", "/api/status"): kibana_available,
        ("POST", "/api/saved_objects/_import"): lambda: (200, {"success": True, "successCount": 1}),
    }
    result = run_job("deploy/kibana/setup.py", {"KIBANA_URL": stand_in.url})
    assert result.returncode != 0


def _imports_fine(stand_in: StandIn, status: Callable[[], tuple[int, Any]]) -> None:
    stand_in.routes = {
        ("GET", "/api/status"): status,
        ("POST", "/api/saved_objects/_import"): lambda: (
            200,
            {"success": True, "successCount": OBJECT_COUNT},
        ),
        ("POST", "/api/data_views/default"): lambda: (200, {"acknowledged": True}),
    }


def test_kibana_setup_imports_while_kibana_is_degraded(stand_in: StandIn) -> None:
    # Kibana 8.15 serves the import while a plugin keeps the overall level at degraded (HTTP 200).
    _imports_fine(stand_in, lambda: (200, {"status": {"overall": {"level": "degraded"}}}))
    result = run_job("deploy/kibana/setup.py", {"KIBANA_URL": stand_in.url})
    assert result.returncode == 0, result.stderr
    assert "kibana-setup: Kibana is degraded" in result.stdout
    assert [r.path.split("?")[0] for r in stand_in.requests] == [
        "/api/status",
        "/api/saved_objects/_import",
        "/api/data_views/default",
    ]


def test_kibana_setup_waits_while_core_is_unavailable_then_imports(stand_in: StandIn) -> None:
    answers = iter(
        [
            (503, {"status": {"overall": {"level": "unavailable"}}}),  # core not up: 503
            (200, {"status": {"overall": {"level": "critical"}}}),  # not a level to import at
            (200, {"status": {"overall": {"level": "available"}}}),
        ]
    )
    _imports_fine(stand_in, lambda: next(answers))
    result = run_job("deploy/kibana/setup.py", {"KIBANA_URL": stand_in.url})
    assert result.returncode == 0, result.stderr
    assert "kibana-setup: Kibana is available" in result.stdout
    statuses = [r for r in stand_in.requests if r.path == "/api/status"]
    assert len(statuses) == 3, "imported only once the level was available or degraded"
    assert stand_in.requests.index(statuses[-1]) < [r.path for r in stand_in.requests].index(
        "/api/saved_objects/_import?overwrite=true"
    )


def test_kibana_setup_gives_up_when_kibana_never_becomes_available(stand_in: StandIn) -> None:
    stand_in.routes = {
        ("GET", "/api/status"): lambda: (503, {"status": {"overall": {"level": "unavailable"}}})
    }
    result = run_job("deploy/kibana/setup.py", {"KIBANA_URL": stand_in.url})
    assert result.returncode != 0
    assert "not available after 5 attempts" in result.stderr
    assert len(stand_in.requests) == 5


def test_elasticsearch_setup_puts_the_policy_then_the_template(stand_in: StandIn) -> None:
    stand_in.routes = {
        ("GET", "/_cluster/health"): lambda: (200, {"status": "yellow"}),
        ("PUT", "/_ilm/policy/msa-logs-7d"): lambda: (200, {"acknowledged": True}),
        ("PUT", "/_index_template/msa-logs"): lambda: (200, {"acknowledged": True}),
    }
    result = run_job("deploy/elasticsearch/setup.py", {"ELASTICSEARCH_URL": stand_in.url})
    assert result.returncode == 0, result.stderr
    puts = [r for r in stand_in.requests if r.method == "PUT"]
    # The template names the policy, so the policy goes first.
    assert [r.path for r in puts] == ["/_ilm/policy/msa-logs-7d", "/_index_template/msa-logs"]
    policy = json.loads((REPO / "deploy/elasticsearch/ilm-policy.json").read_text())
    template = json.loads((REPO / "deploy/elasticsearch/index-template.json").read_text())
    assert json.loads(puts[0].body) == policy
    assert json.loads(puts[1].body) == template
    assert template["template"]["settings"]["index.lifecycle.name"] == "msa-logs-7d"
    assert policy["policy"]["phases"]["delete"]["min_age"] == "7d"


def test_elasticsearch_setup_fails_when_the_template_is_refused(stand_in: StandIn) -> None:
    stand_in.routes = {
        ("GET", "/_cluster/health"): lambda: (200, {"status": "green"}),
        ("PUT", "/_ilm/policy/msa-logs-7d"): lambda: (200, {"acknowledged": True}),
        ("PUT", "/_index_template/msa-logs"): lambda: (
            400,
            {"error": {"type": "mapper_parsing_exception", "reason": "bad mapping"}},
        ),
    }
    result = run_job("deploy/elasticsearch/setup.py", {"ELASTICSEARCH_URL": stand_in.url})
    assert result.returncode != 0
    assert "mapper_parsing_exception" in result.stderr
