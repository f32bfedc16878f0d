"""Zipkin run as compose runs it (its heap and ``MEM_MAX_SPANS``) holds this platform's spans.

A fresh Zipkin, started with compose's settings, is fed half again as many spans as it keeps: copies
of a real product page's and mobile listing's traces (taken from the session's Zipkin, under fresh
trace ids). Past the count it drops the oldest traces, and it must stay up and answer. Its JVM exits
on a full heap (``-XX:+ExitOnOutOfMemoryError``), as the container's does: with ``MEM_MAX_SPANS``
at 100,000, the same 256 MiB heap ran out after 64,640 of these spans.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from msa_cli.devstack import zipkin_settings
from msa_testing.fixtures import COMPOSE, Topology
from msa_testing.infra import ZipkinServer, start_zipkin
from msa_testing.polling import wait_until

pytestmark = pytest.mark.system

# gateway -> the services each answer calls, so each trace is whole before it is copied
PAGES = {
    ("gateway-web", "/api/products/p-1001"): {"gateway-web", "catalog", "inventory", "reviews"},
    ("gateway-mobile", "/m/products?limit=5"): {"gateway-mobile", "catalog", "inventory", "reviews"},
}


def _traced(
    topology: Topology, zipkin: ZipkinServer, gateway: str, path: str, services: set[str]
) -> list[Any]:
    trace_id = secrets.token_hex(16)
    headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    response = httpx.get(f"{topology.url(gateway)}{path}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text

    def whole() -> list[Any] | None:
        response = httpx.get(f"{zipkin.url}/api/v2/trace/{trace_id}", timeout=5)
        if response.status_code == 404:  # no span of it reported yet
            return None
        spans: list[Any] = response.raise_for_status().json()
        return spans if services <= {s["localEndpoint"]["serviceName"] for s in spans} else None

    return wait_until(f"the trace of {gateway}{path}", whole, timeout_s=20)  # type: ignore[no-any-return]


def _copies(templates: list[list[Any]]) -> list[Any]:
    """Every template trace once more, under a fresh trace id and the current time."""
    now = int(time.time() * 1e6)
    batch = []
    for trace in templates:
        trace_id = secrets.token_hex(16)
        batch += [{**span, "traceId": trace_id, "timestamp": now} for span in trace]
    return batch


def _log_tail(zipkin: ZipkinServer) -> str:
    lines = zipkin.log_file.read_text(errors="replace").splitlines()
    fatal = [line for line in lines if "OutOfMemory" in line or "Terminating" in line]
    return "\n".join(fatal or lines[-5:])


def test_zipkin_keeps_its_span_count_of_this_platform_s_spans_within_its_heap(
    topology: Topology, zipkin_server: ZipkinServer, tmp_path: Path
) -> None:
    templates = [_traced(topology, zipkin_server, gw, path, svcs) for (gw, path), svcs in PAGES.items()]
    kept = int(zipkin_settings(COMPOSE)[1]["MEM_MAX_SPANS"])
    zipkin = start_zipkin(tmp_path)
    try:
        posted = 0
        with httpx.Client(base_url=zipkin.url, timeout=30) as client:
            while posted < kept * 3 // 2:
                batch = _copies(templates * 40)
                try:
                    response = client.post("/api/v2/spans", content=json.dumps(batch),
                                           headers={"content-type": "application/json"})  # fmt: skip
                except httpx.TransportError as exc:
                    pytest.fail(
                        f"Zipkin stopped answering after {posted} spans ({exc!r}): {_log_tail(zipkin)}"
                    )
                assert response.status_code == 202, response.text
                posted += len(batch)
            assert zipkin.process.poll() is None, f"Zipkin exited: {_log_tail(zipkin)}"
            services = client.get("/api/v2/services").json()
            assert {"gateway-web", "gateway-mobile", "catalog"} <= set(services)
            traces = client.get("/api/v2/traces", params={"limit": 50, "serviceName": "gateway-web"}).json()
            assert len(traces) == 50, "the newest traces are still there"
    finally:
        zipkin.stop()
