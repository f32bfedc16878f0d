"""The walking skeleton as real processes: one trace across gateway and catalog in a real Zipkin,
the same trace_id in both services' logs, and `msa dev up` starting and stopping cleanly."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from msa_testing.fixtures import REPO, Topology
from msa_testing.infra import ZipkinServer

pytestmark = pytest.mark.system


def _zipkin_trace(
    zipkin: ZipkinServer, trace_id: str, expected: set[tuple[str, str]], timeout_s: float = 20
) -> list[dict]:
    """Poll Zipkin until the trace holds a span of every expected (service, kind); spans of one
    trace arrive in several batches (a server span ends, and is exported, after its client spans)."""
    deadline = time.monotonic() + timeout_s
    spans: list[dict] = []
    while time.monotonic() < deadline:
        response = httpx.get(f"{zipkin.url}/api/v2/trace/{trace_id}", timeout=5)
        if response.status_code == 200:
            spans = response.json()
            if expected <= {(s["localEndpoint"]["serviceName"], s.get("kind", "")) for s in spans}:
                return spans
        time.sleep(0.3)
    seen = sorted({(s["localEndpoint"]["serviceName"], s.get("kind", "")) for s in spans})
    pytest.fail(f"trace {trace_id} has spans {seen}, expected {sorted(expected)}")


def _log_events(path: Path, trace_id: str) -> list[dict]:
    events = []
    for line in path.read_text(errors="replace").splitlines():
        if trace_id in line and line.startswith("{"):
            events.append(json.loads(line))
    return events


def test_one_request_is_one_trace_across_gateway_and_catalog(
    topology: Topology, zipkin_server: ZipkinServer
) -> None:
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    response = httpx.get(
        f"{topology.url('gateway-web')}/api/products", headers={"traceparent": traceparent}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"], "catalog answered through the gateway"

    # the gateway's server span, its chassis client call to catalog, and catalog's server span
    expected = {("gateway-web", "SERVER"), ("gateway-web", "CLIENT"), ("catalog", "SERVER")}
    spans = _zipkin_trace(zipkin_server, trace_id, expected)
    assert {span["traceId"] for span in spans} == {trace_id}
    by_id = {span["id"]: span for span in spans}
    catalog_server = next(
        s for s in spans if s["localEndpoint"]["serviceName"] == "catalog" and s.get("kind") == "SERVER"
    )
    parent = by_id[catalog_server["parentId"]]
    assert (parent["localEndpoint"]["serviceName"], parent.get("kind")) == ("gateway-web", "CLIENT")

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        web = _log_events(topology.log_file("gateway-web"), trace_id)
        catalog = _log_events(topology.log_file("catalog"), trace_id)
        if web and catalog:
            break
        time.sleep(0.2)
    assert any(e["logger_name"] == "access" and e["http.path"] == "/api/products" for e in web)
    assert any(e["logger_name"] == "access" and e["http.path"] == "/products" for e in catalog)
    request_ids = {e["request_id"] for e in web + catalog if e["logger_name"] == "access"}
    assert len(request_ids) == 1, "the request id travels with the call"


def test_b3_headers_are_accepted_inbound(topology: Topology, zipkin_server: ZipkinServer) -> None:
    trace_id = secrets.token_hex(16)
    headers = {"X-B3-TraceId": trace_id, "X-B3-SpanId": secrets.token_hex(8), "X-B3-Sampled": "1"}
    response = httpx.get(f"{topology.url('gateway-mobile')}/m/products", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    _zipkin_trace(zipkin_server, trace_id, {("gateway-mobile", "SERVER"), ("catalog", "SERVER")})


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_msa_dev_up_starts_everything_and_stops_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    msa = Path(sys.executable).parent / "msa"
    process = subprocess.Popen(
        [str(msa), "dev", "up", "--free-ports", "--state-dir", str(tmp_path), "--timeout", "120"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 150
        for line in process.stdout:
            output.append(line)
            if "all services ready" in line or time.monotonic() > deadline:
                break
        assert "all services ready" in "".join(output), "".join(output)
        children = _children(process.pid)
        table = "".join(output)
        for member in (
            "gateway-web",
            "gateway-mobile",
            "auth-service",
            "config-service",
            "ops-dashboard",
            "catalog",
            "inventory",
            "reviews",
            "orders",
        ):
            assert member in table
        assert len(children) >= 10, f"9 services and redis-server, found {len(children)}"
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
        output.append(rest or "")
    assert process.returncode == 0, "".join(output)
    assert "stopped." in "".join(output)
    leftover = [pid for pid in children if _alive(pid)]
    assert not leftover, f"orphans left behind: {leftover}"
