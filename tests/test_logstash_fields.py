"""The exact bytes a real service sends to Logstash, against the Elasticsearch index template.

A real catalog app (chassis logging, python-logstash's TCP handler) is pointed at a TCP listener
of this test instead of Logstash. One real request and one logged exception later, the captured
stream is split the way Logstash's ``json_lines`` codec splits it, and every field name that
arrives must be mapped by deploy/elasticsearch/index-template.json with a compatible type:
nothing a service emits is left to dynamic mapping.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from chassis.logging import _Formatter, shutdown_logging
from msa_testing.logstash import LogCollector, json_lines

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = json.loads((REPO / "deploy/elasticsearch/index-template.json").read_text())
NUMERIC = {"byte", "short", "integer", "long", "float", "double", "half_float", "scaled_float"}


def _mapping_of(field: str) -> dict[str, Any] | None:
    """The template's mapping of a field name as Elasticsearch resolves it: dots are object paths."""
    node: dict[str, Any] = {"properties": TEMPLATE["template"]["mappings"]["properties"]}
    for part in field.split("."):
        properties = node.get("properties")
        if properties is None or part not in properties:
            # "@timestamp" and friends contain no dots; a dotted name not in the tree is unmapped.
            return None
        node = properties[part]
    return node


def _capture(redis_url: str, data_dir: Path) -> list[dict[str, Any]]:
    from catalog.main import create
    from catalog.settings import Settings

    with LogCollector() as collector:
        settings = Settings(
            redis_url=redis_url,
            logstash_host="127.0.0.1",
            logstash_port=collector.port,
            zipkin_endpoint=None,
            data_dir=data_dir,
        )
        return _run_app(create(settings), collector)


def _run_app(app: Any, collector: LogCollector) -> list[dict[str, Any]]:
    import asyncio

    async def drive() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
                response = await client.get("/products", headers={"x-request-id": "req-logstash-fields"})
                assert response.status_code == 200
            log = logging.getLogger("tests.logstash_fields")
            try:
                raise RuntimeError("boom: a stack_trace for the template")
            except RuntimeError:
                log.exception("captured failure")
            log.critical("captured critical")

    try:
        asyncio.run(drive())
    finally:
        shutdown_logging()  # flushes the queue through the TCP handler, then closes the socket
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and b"captured critical" not in collector.data():
        time.sleep(0.05)
    return json_lines(collector.data())


def test_every_field_the_chassis_sends_is_mapped_by_the_template(redis_url: str, tmp_path: Path) -> None:
    events = _capture(redis_url, tmp_path)
    access = [
        e for e in events if e.get("logger_name") == "access" and e.get("request_id") == "req-logstash-fields"
    ]
    assert len(access) == 1, [e.get("message") for e in events]
    (request_line,) = access

    # The fields every event carries (ARCHITECTURE.md), with the flat dotted http.* keys python-logstash sends.
    for name in ("service", "env", "level", "logger_name", "message", "trace_id", "span_id", "request_id"):
        assert name in request_line, name
    assert request_line["service"] == "catalog"
    assert re.fullmatch(r"[0-9a-f]{32}", request_line["trace_id"])
    for name in ("http.method", "http.path", "http.status_code", "http.duration_ms", "http.route"):
        assert name in request_line, name
    assert request_line["http.status_code"] == 200

    error = next(e for e in events if e.get("message") == "captured failure")
    assert error["level"] == "ERROR"  # the literal the index pipeline's alert condition tests
    assert "RuntimeError: boom" in error["stack_trace"]
    critical = next(e for e in events if e.get("message") == "captured critical")
    assert critical["level"] == "CRITICAL"

    unmapped, wrong_type = set(), set()
    for event in events:
        for name, value in event.items():
            mapping = _mapping_of(name)
            if mapping is None or "type" not in mapping:
                unmapped.add(name)
            elif value is not None and not _compatible(mapping["type"], value):
                wrong_type.add(f"{name}={value!r} as {mapping['type']}")
    assert not unmapped, f"fields the services send but the template does not map: {sorted(unmapped)}"
    assert not wrong_type, sorted(wrong_type)


def _compatible(es_type: str, value: Any) -> bool:
    if es_type in NUMERIC:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if es_type == "date":
        return isinstance(value, str) and datetime.fromisoformat(value.replace("Z", "+00:00")) is not None
    if es_type in ("keyword", "text"):
        items = value if isinstance(value, list) else [value]
        return all(isinstance(item, str) for item in items)
    return False


def test_the_template_types_the_fields_the_dashboards_use() -> None:
    # Keywords aggregate (terms), numbers average: what the Kibana objects rely on.
    assert _mapping_of("service") == {"type": "keyword"}
    assert _mapping_of("level") == {"type": "keyword"}
    for name in ("trace_id", "span_id", "request_id", "user", "http.method", "http.route"):
        assert (_mapping_of(name) or {}).get("type") == "keyword", name
    assert (_mapping_of("http.status_code") or {}).get("type") in NUMERIC
    assert (_mapping_of("http.duration_ms") or {}).get("type") in {"float", "double", "scaled_float"}
    assert (_mapping_of("message") or {})["fields"]["keyword"]["type"] == "keyword"
    assert _mapping_of("stack_trace") == {"type": "text"}
    # Sent by some records only, so a capture may not show them: mapped on purpose all the same.
    assert _mapping_of("breaker") == {"type": "keyword"}, "breaker state changes (chassis.breakers)"
    assert _mapping_of("taskName") == {"type": "keyword"}, "set by Python 3.12+ logging"
    assert _mapping_of("no.such.field") is None


def test_python_3_12_records_carry_task_name_to_logstash_and_the_template_maps_it() -> None:
    async def log_in_a_task() -> logging.LogRecord:
        return logging.LogRecord("tests.task", logging.INFO, __file__, 1, "in a task", None, None)

    record = asyncio.run(log_in_a_task())
    if sys.version_info < (3, 12):
        record.taskName = "Task-1"  # what LogRecord.__init__ sets from asyncio.current_task() on 3.12+
    assert isinstance(record.__dict__.get("taskName"), str)
    sent = json.loads(_Formatter().format(record))  # python-logstash forwards every unknown attribute
    assert sent["taskName"] == record.__dict__["taskName"]
    assert _compatible(_mapping_of("taskName")["type"], sent["taskName"])  # type: ignore[index]


def test_collector_sees_what_is_sent() -> None:
    # The control for the capture: the listener records the bytes a plain socket writes.
    with LogCollector() as collector:
        with socket.create_connection(("127.0.0.1", collector.port), timeout=5) as sock:
            sock.sendall(b'{"a": 1}\n{"b": ')
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(collector.data()) < 14:
            time.sleep(0.02)
        assert collector.data() == b'{"a": 1}\n{"b": '
        with pytest.raises(ValueError, match="newline"):
            json_lines(collector.data())  # json_lines holds a partial last line back
        assert json_lines(collector.data() + b"2}\n") == [{"a": 1}, {"b": 2}]
