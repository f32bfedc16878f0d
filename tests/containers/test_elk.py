"""The log path in containers: service -> Logstash (ingest) -> Redis -> Logstash (index) ->
Elasticsearch, and Kibana provisioned by its one-shot job.

These need the Elasticsearch, Logstash and Kibana images; where they cannot be had (no registry
reachable, and there is no stand-in), the tier leaves these tests out and says so. The same index
template, events and Kibana queries are checked against a real Elasticsearch node without Docker
in tests/test_elasticsearch_real.py.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest

from msa_testing.containers import ComposeStack
from msa_testing.polling import wait_until

pytestmark = pytest.mark.elk


def _es(stack: ComposeStack, path: str) -> Any:
    """Elasticsearch is not published: ask from inside its own container."""
    (node,) = stack.containers("elasticsearch")
    return json.loads(stack.docker("exec", node.name, "curl", "-fsS", f"http://localhost:9200{path}"))


def test_kibana_setup_imports_the_saved_objects(stack: ComposeStack) -> None:
    result = stack.compose("run", "--rm", "kibana-setup", timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_request_s_log_lines_reach_elasticsearch_with_its_trace_id(stack: ComposeStack) -> None:
    trace_id = secrets.token_hex(16)
    answer = httpx.get(
        f"{stack.url('gateway-web')}/api/products/p-1001",
        headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        timeout=10,
    )
    assert answer.status_code == 200
    hits = wait_until(
        f"log events of trace {trace_id} in Elasticsearch",
        lambda: _es(stack, f"/msa-logs-*/_count?q=trace_id:{trace_id}")["count"],
        timeout_s=120,
        every_s=2,
    )
    assert hits >= 2, "the gateway's access line and its downstreams'"
    # The index template was applied before the first event: a number, not dynamic text.
    fields = _es(stack, "/msa-logs-*/_mapping/field/http.status_code")
    types = {
        index["mappings"]["http.status_code"]["mapping"]["status_code"]["type"] for index in fields.values()
    }
    assert types == {"short"}
