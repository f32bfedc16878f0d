"""The log path's far end against a real Elasticsearch 8.15 node.

1. deploy/elasticsearch/setup.py's documents go to the node; the only change is dropping
   ``index.lifecycle.name``, since this distribution has no ILM (asserted: the job fails at the ILM
   policy and nowhere else, the untouched template is refused for that one setting only).
2. Real services (the local topology, processes started as `msa dev up` starts them) send their
   log lines to a TCP listener standing in for Logstash: access lines, an unhandled error with its
   stack trace (a catalog row the API cannot serve), breaker state changes and the 503 warnings of
   short-circuited calls (catalog stopped behind gateway-web, then started again).
3. The captured bytes go through the model of the ingest and index pipelines
   (msa_testing.logstash, which reads deploy/logstash) and are bulk-indexed into the daily
   ``msa-logs-YYYY.MM.dd`` index: no item may fail, and the index mapping must be the template's,
   with nothing left to dynamic mapping.
4. Each saved search and visualization of deploy/kibana is translated into the search Kibana sends
   (msa_testing.kibana) and run; the answers must be what the captured events say they should be.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from msa_cli.devstack import DevStack
from msa_testing.fixtures import COMPOSE, REPO, Topology
from msa_testing.infra import ELASTICSEARCH_VERSION, ElasticsearchServer
from msa_testing.kibana import (
    KqlError,
    TimeRange,
    kql_to_dsl,
    load_saved_objects,
    rows,
    saved_search_request,
    visualization_request,
)
from msa_testing.logstash import IndexedEvent, LogCollector, json_lines, through_pipelines
from msa_testing.polling import wait_until

# What a product page needs, and what gateway-web expects to find.
SERVICES = {"config-service", "auth-service", "catalog", "inventory", "reviews", "gateway-web"}
PAGE = "/api/products/p-1001"
BROKEN = "p-broken"  # a catalog row whose price is not a number: the API cannot serve it
BREAKER = "gateway-web->catalog"
TASK_NAME_ID = "python-3.12-record"


def _setup_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "elasticsearch_setup", REPO / "deploy/elasticsearch/setup.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SETUP = _setup_module()


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a JSON document by its dotted path (to compare two templates exactly)."""
    if isinstance(node, dict) and node:
        found: dict[str, Any] = {}
        for key, value in node.items():
            found.update(_leaves(value, f"{prefix}{key}."))
        return found
    return {prefix.rstrip("."): node}


def _dotenv(name: str) -> str:
    for line in (REPO / ".env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    raise KeyError(name)


# ---------------------------------------------------------------- the translator, without a node


def _fields() -> dict[str, str]:
    return {"level": "keyword", "http.status_code": "short", "message": "text", "@timestamp": "date"}


def test_the_saved_queries_translate_to_what_kibana_sends() -> None:
    objects = load_saved_objects()
    queries = {
        obj["attributes"]["title"]: json.loads(
            obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"]
        )["query"]["query"]
        for obj in objects.values()
        if obj["type"] == "search"
    }
    should = {"minimum_should_match": 1}
    assert kql_to_dsl(queries["Errors"], _fields()) == {
        "bool": {
            "should": [
                {"bool": {"should": [{"match": {"level": "ERROR"}}], **should}},
                {"bool": {"should": [{"match": {"level": "CRITICAL"}}], **should}},
            ],
            **should,
        }
    }
    assert kql_to_dsl(queries["Requests"], _fields()) == {
        "bool": {"should": [{"exists": {"field": "http.status_code"}}], **should}
    }
    assert kql_to_dsl("", _fields()) == {"match_all": {}}


def test_the_kql_translator_refuses_what_it_does_not_know_and_unknown_fields_match_nothing() -> None:
    assert kql_to_dsl('not level:ERROR and message:"read timeout"', _fields()) == {
        "bool": {
            "filter": [
                {
                    "bool": {
                        "must_not": {
                            "bool": {"should": [{"match": {"level": "ERROR"}}], "minimum_should_match": 1}
                        }
                    }
                },
                {
                    "bool": {
                        "should": [{"match_phrase": {"message": "read timeout"}}],
                        "minimum_should_match": 1,
                    }
                },
            ]
        }
    }
    # Kibana: a field the data view does not have matches no document.
    assert kql_to_dsl("breaker:x", _fields()) == {"bool": {"should": [], "minimum_should_match": 1}}
    for unsupported in (
        "ERROR",
        "message:time*",
        "http.status_code > 500",
        "@timestamp:2026",
        "level:(ERROR",
    ):
        with pytest.raises(KqlError):
            kql_to_dsl(unsupported, _fields())


def test_the_node_is_the_version_compose_runs() -> None:
    assert _dotenv("ELASTIC_VERSION") == ELASTICSEARCH_VERSION


# ---------------------------------------------------------------- the template on the node


@pytest.fixture(scope="module")
def es(elasticsearch_server: ElasticsearchServer) -> ElasticsearchServer:
    print(f"\nElasticsearch {ELASTICSEARCH_VERSION} booted in {elasticsearch_server.boot_s:.1f} s")
    return elasticsearch_server


@pytest.fixture(scope="module")
def template(es: ElasticsearchServer) -> dict[str, Any]:
    """The template as setup.py sends it, minus the ILM setting; installed with setup.py's own calls."""
    (policy_path, _), (template_path, original) = SETUP.documents()
    assert policy_path.startswith("/_ilm/policy/")
    assert template_path == f"/_index_template/{SETUP.TEMPLATE_NAME}"
    installed = copy.deepcopy(original)
    del installed["template"]["settings"]["index.lifecycle.name"]
    before, after = _leaves(original), _leaves(installed)
    assert {k: v for k, v in before.items() if after.get(k, object()) != v} == {
        "template.settings.index.lifecycle.name": "msa-logs-7d"
    }, "dropping the ILM setting is the only difference"
    assert set(after) <= set(before)
    SETUP.wait_for_cluster(es.url, attempts=10, delay_s=0.5)
    SETUP.put_acknowledged(es.url, template_path, installed)
    return dict(installed)


@pytest.mark.system
def test_setup_job_fails_on_this_node_at_the_ilm_policy_and_nowhere_else(es: ElasticsearchServer) -> None:
    job = subprocess.run(
        [sys.executable, str(REPO / "deploy/elasticsearch/setup.py")],
        env={"ELASTICSEARCH_URL": es.url, "SETUP_WAIT_ATTEMPTS": "10", "SETUP_WAIT_DELAY_S": "0.5"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert job.returncode != 0
    assert f"PUT /_ilm/policy/{SETUP.POLICY_NAME} failed: HTTP 400" in job.stderr
    assert "no handler found" in job.stderr, "the node has no ILM: that is the reason, not the policy"
    # The template as committed is refused for the ILM setting alone.
    (_, _), (_, original) = SETUP.documents()
    status, answer = SETUP.request("PUT", f"{es.url}/_index_template/msa-logs-ilm-check", original)
    assert status == 400, answer
    reason = answer["error"]["reason"]
    assert "Validation Failed: 1: unknown setting [index.lifecycle.name]" in reason
    assert "2:" not in reason, reason


# ---------------------------------------------------------------- real log events from real services


@dataclass
class Capture:
    events: list[IndexedEvent]
    page_trace_id: str
    timings: dict[str, float]


def _breaker_state(web: str) -> str:
    for snapshot in httpx.get(f"{web}/ops/telemetry", timeout=5).json()["breakers"]:
        if snapshot["name"] == BREAKER:
            return str(snapshot["state"])
    return "unknown"


def _exercise(topo: Topology, collector: LogCollector) -> str:
    """Requests that make the services log what the dashboards are for; the page's trace id."""
    web = topo.url("gateway-web")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    page = httpx.get(web + PAGE, headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}, timeout=15)
    assert page.status_code == 200, page.text
    assert page.json()["degraded"] == []

    # A row the API cannot serve: an unhandled error, logged with its stack trace.
    with sqlite3.connect(Path(topo.env("catalog")["DATA_DIR"]) / "catalog.sqlite3") as db:
        now = "2026-01-01T00:00:00+00:00"
        db.execute(
            "INSERT INTO products (id, name, category, price_cents, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (BROKEN, "Broken", "test", "not-a-number", now, now),
        )
    assert httpx.get(f"{topo.url('catalog')}/products/{BROKEN}", timeout=10).status_code == 500

    # catalog gone: failures open gateway-web's breaker, then calls are short-circuited (503 each).
    topo.stop("catalog")
    for _ in range(5):
        assert httpx.get(web + PAGE, timeout=15).status_code == 503
        if _breaker_state(web) == "open":
            break
    assert _breaker_state(web) == "open"
    short = httpx.get(web + PAGE, timeout=15)
    assert short.status_code == 503
    assert short.json()["reason"] == "short_circuited"

    # catalog back: after the reset timeout a trial call closes the breaker again.
    topo.start("catalog")
    wait_until("a full product page again", lambda: httpx.get(web + PAGE, timeout=15).status_code == 200)
    assert _breaker_state(web) == "closed"
    wait_until(
        "the closing state change to reach the listener", lambda: b"half-open -> closed" in collector.data()
    )
    return trace_id


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    timings: dict[str, float] = {}
    with LogCollector() as collector:
        stack = DevStack(
            compose_file=COMPOSE,
            state_dir=tmp_path_factory.mktemp("es-topology"),
            free_ports=True,
            zipkin_url="http://127.0.0.1:9",  # nothing listens: spans are dropped
            only=SERVICES,
            env_overrides={
                "*": {"LOGSTASH_HOST": "127.0.0.1", "LOGSTASH_PORT": str(collector.port)},
                "gateway-web": {"BREAKER__FAIL_MAX": "2", "BREAKER__RESET_TIMEOUT_S": "2"},
            },
        )
        try:
            started = time.monotonic()
            stack.plan()
            stack.start()
            stack.wait_ready(timeout_s=120)
            timings["topology up"] = time.monotonic() - started
            started = time.monotonic()
            trace_id = _exercise(Topology(stack), collector)
            timings["scenario"] = time.monotonic() - started
        finally:
            stack.stop()  # the services flush their log queues as they stop
        stream = collector.data()
    json_lines(stream)  # every event ends with a newline: nothing is held back by the codec
    return Capture(through_pipelines(stream), trace_id, timings)


@pytest.fixture(scope="module")
def indexed(es: ElasticsearchServer, template: dict[str, Any], capture: Capture) -> dict[str, dict[str, Any]]:
    """The captured events, bulk-indexed as Logstash's elasticsearch output would; by document id.

    Plus one event as Python 3.12+ sends it (with ``taskName``), which this interpreter may not."""
    documents = {str(number): event for number, event in enumerate(capture.events)}
    access = next(e for e in capture.events if e.source.get("logger_name") == "access")
    documents[TASK_NAME_ID] = IndexedEvent(access.index, {**access.source, "taskName": "Task-7"})
    lines: list[dict[str, Any]] = []
    for doc_id, event in documents.items():
        lines += [{"index": {"_index": event.index, "_id": doc_id}}, event.source]
    started = time.monotonic()
    answer = es.bulk(lines).json()
    print(
        f"\nbulk: {len(documents)} events in {(time.monotonic() - started) * 1000:.0f} ms; {capture.timings}"
    )
    failed = [
        item["index"]
        for item in answer["items"]
        if item["index"].get("error") or item["index"]["status"] != 201
    ]
    assert answer["errors"] is False, failed[:5]
    assert not failed
    assert len(answer["items"]) == len(documents)
    return {doc_id: event.source for doc_id, event in documents.items()}


@pytest.mark.system
def test_the_capture_has_every_kind_of_event_the_dashboards_are_for(capture: Capture) -> None:
    sources = [e.source for e in capture.events]
    services = {s["service"] for s in sources}
    assert services == SERVICES, "every running service logged through the listener"
    access = [s for s in sources if s.get("logger_name") == "access"]
    assert {(s["service"], s["http.status_code"]) for s in access} >= {
        ("gateway-web", 200),
        ("catalog", 200),
        ("inventory", 200),
        ("reviews", 200),
        ("catalog", 500),
        ("gateway-web", 503),
    }
    page = [s for s in access if s.get("trace_id") == capture.page_trace_id]
    assert {s["service"] for s in page} == {"gateway-web", "catalog", "inventory", "reviews"}
    (error,) = [s for s in sources if s["level"] == "ERROR" and s.get("stack_trace")]
    assert error["service"] == "catalog"
    assert error["message"] == f"unhandled error on GET /products/{BROKEN}"
    assert error["stack_trace"].startswith("Traceback (most recent call last):")
    assert "ValidationError" in error["stack_trace"]
    changes = [s["message"] for s in sources if s.get("breaker") == BREAKER]
    assert changes == [
        f"breaker {BREAKER}: closed -> open",
        f"breaker {BREAKER}: open -> half-open",
        f"breaker {BREAKER}: half-open -> closed",
    ]
    assert any("catalog is unavailable (short_circuited)" in s["message"] for s in sources)
    # What the index pipeline does, seen on the real events: the ERROR is also an alert.
    assert all(e.alerted == (e.source["level"] in ("ERROR", "CRITICAL")) for e in capture.events)
    assert not any(e.source.get("event", {}).get("original") for e in capture.events), "no raw copy indexed"


# ---------------------------------------------------------------- the index


@pytest.mark.system
def test_the_daily_index_is_mapped_exactly_as_the_template_says(
    es: ElasticsearchServer, template: dict[str, Any], capture: Capture, indexed: dict[str, dict[str, Any]]
) -> None:
    mappings = es.request("GET", "/msa-logs-*/_mapping").json()
    days = {e.index for e in capture.events}
    assert set(mappings) == days, "one index per UTC day of the events, named by the index pipeline"
    for event in capture.events:
        assert event.index == "msa-logs-" + event.source["@timestamp"][:10].replace("-", ".")
    count = es.request("GET", "/msa-logs-*/_count").json()["count"]
    assert count == len(indexed)
    promised = template["template"]["mappings"]
    for index, body in mappings.items():
        mapping = body["mappings"]
        # Equal properties: no field the services sent was left to dynamic mapping.
        assert mapping["properties"] == promised["properties"], index
        assert mapping["dynamic_templates"] == promised["dynamic_templates"], index
    settings = es.request("GET", "/msa-logs-*/_settings").json()
    for index, body in settings.items():
        assert body["settings"]["index"]["number_of_replicas"] == "0", index
        assert body["settings"]["index"]["refresh_interval"] == "5s", index

    caps = es.request("GET", "/msa-logs-*/_field_caps", {"fields": ["*"]}).json()["fields"]
    types = {name: next(iter(kinds)) for name, kinds in caps.items()}
    for name, expected in {
        "@timestamp": "date",
        "http.status_code": "short",
        "http.duration_ms": "float",
        "http.route": "keyword",
        "trace_id": "keyword",
        "service": "keyword",
        "level": "keyword",
        "message": "text",
        "message.keyword": "keyword",
        "stack_trace": "text",
        "breaker": "keyword",
        "taskName": "keyword",
    }.items():
        assert types.get(name) == expected, f"{name}: {types.get(name)}"


def _ids(es: ElasticsearchServer, query: dict[str, Any]) -> set[str]:
    answer = es.request("POST", "/msa-logs-*/_search", {"query": query, "size": 1000}).json()
    return {hit["_id"] for hit in answer["hits"]["hits"]}


@pytest.mark.system
def test_the_mapped_fields_answer_the_queries_they_are_mapped_for(
    es: ElasticsearchServer, indexed: dict[str, dict[str, Any]]
) -> None:
    assert _ids(es, {"term": {"taskName": "Task-7"}}) == {TASK_NAME_ID}
    breaker_events = {i for i, s in indexed.items() if s.get("breaker") == BREAKER}
    assert len(breaker_events) == 3
    assert _ids(es, {"term": {"breaker": BREAKER}}) == breaker_events
    server_errors = {i for i, s in indexed.items() if s.get("http.status_code", 0) >= 500}
    assert _ids(es, {"range": {"http.status_code": {"gte": 500}}}) == server_errors
    (error_id,) = [i for i, s in indexed.items() if s.get("stack_trace")]
    phrase = {"match_phrase": {"stack_trace": "most recent call last"}}
    assert _ids(es, phrase) == {error_id}, "stack_trace is analysed text: a phrase inside it matches"


# ---------------------------------------------------------------- Kibana's queries


@pytest.fixture(scope="module")
def kibana(
    es: ElasticsearchServer, indexed: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The saved objects, and the data view's fields as Kibana reads them (field caps)."""
    caps = es.request("GET", "/msa-logs-*/_field_caps", {"fields": ["*"]}).json()["fields"]
    fields = {name: next(iter(kinds)) for name, kinds in caps.items() if not name.startswith("_")}
    return load_saved_objects(), fields


def _dashboard_time(objects: dict[str, Any]) -> TimeRange:
    (board,) = [o for o in objects.values() if o["type"] == "dashboard"]
    return TimeRange.relative(board["attributes"]["timeFrom"], board["attributes"]["timeTo"])


def _search(es: ElasticsearchServer, pattern: str, body: dict[str, Any]) -> dict[str, Any]:
    response = es.request("POST", f"/{pattern}/_search", body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.mark.system
def test_saved_search_errors_returns_the_errors_and_no_access_line(
    es: ElasticsearchServer, kibana: tuple[dict[str, Any], dict[str, str]], indexed: dict[str, dict[str, Any]]
) -> None:
    objects, fields = kibana
    pattern, body = saved_search_request("msa-search-errors", objects, fields, _dashboard_time(objects))
    hits = _search(es, pattern, body)["hits"]["hits"]
    expected = {i for i, s in indexed.items() if s["level"] in ("ERROR", "CRITICAL")}
    assert {hit["_id"] for hit in hits} == expected
    assert any(indexed[hit["_id"]].get("stack_trace") for hit in hits), "the unhandled error is listed"
    assert not any("http.status_code" in indexed[hit["_id"]] for hit in hits), "no access line"
    stamps = [hit["_source"]["@timestamp"] for hit in hits]
    assert stamps == sorted(stamps, reverse=True), "newest first, as the saved sort says"


@pytest.mark.system
def test_saved_search_requests_returns_every_access_line_and_nothing_else(
    es: ElasticsearchServer, kibana: tuple[dict[str, Any], dict[str, str]], indexed: dict[str, dict[str, Any]]
) -> None:
    objects, fields = kibana
    pattern, body = saved_search_request("msa-search-requests", objects, fields, _dashboard_time(objects))
    hits = _search(es, pattern, body)["hits"]["hits"]
    expected = {i for i, s in indexed.items() if s.get("logger_name") == "access"}
    assert {hit["_id"] for hit in hits} == expected
    assert {indexed[hit["_id"]]["http.status_code"] for hit in hits} >= {200, 500, 503}


def _vis_rows(
    es: ElasticsearchServer, kibana: tuple[dict[str, Any], dict[str, str]], vis_id: str
) -> list[dict[str, Any]]:
    objects, fields = kibana
    pattern, body = visualization_request(vis_id, objects, fields, _dashboard_time(objects))
    aggs = json.loads(objects[vis_id]["attributes"]["visState"])["aggs"]
    return rows(aggs, _search(es, pattern, body))


@pytest.mark.system
def test_log_volume_per_service_counts_every_service_seen(
    es: ElasticsearchServer, kibana: tuple[dict[str, Any], dict[str, str]], indexed: dict[str, dict[str, Any]]
) -> None:
    table = _vis_rows(es, kibana, "msa-vis-log-volume")  # 2: time bucket, 3: service, 1: count
    per_service: Counter[str] = Counter()
    for row in table:
        per_service[row["3"]] += row["1"]
    assert per_service == Counter(s["service"] for s in indexed.values())
    assert set(per_service) == SERVICES
    # interval auto over the dashboard's hour: one-minute buckets, holding the minutes with events.
    minutes = {s["@timestamp"][:16] + ":00.000Z" for s in indexed.values()}
    assert {row["2"] for row in table} == minutes


@pytest.mark.system
def test_errors_over_time_counts_only_the_errors(
    es: ElasticsearchServer, kibana: tuple[dict[str, Any], dict[str, str]], indexed: dict[str, dict[str, Any]]
) -> None:
    table = _vis_rows(es, kibana, "msa-vis-errors-over-time")
    per_service: Counter[str] = Counter()
    for row in table:
        per_service[row["3"]] += row["1"]
    errors = [s for s in indexed.values() if s["level"] in ("ERROR", "CRITICAL")]
    assert per_service == Counter(s["service"] for s in errors)
    assert per_service["catalog"] >= 1


@pytest.mark.system
def test_top_error_messages_lists_the_error_message(
    es: ElasticsearchServer, kibana: tuple[dict[str, Any], dict[str, str]], indexed: dict[str, dict[str, Any]]
) -> None:
    table = _vis_rows(es, kibana, "msa-vis-top-error-messages")  # 2: message, 3: service, 1: count
    errors = [s for s in indexed.values() if s["level"] in ("ERROR", "CRITICAL")]
    # message.keyword keeps messages up to 512 characters (ignore_above): longer ones are not terms.
    expected = Counter((s["message"], s["service"]) for s in errors if len(s["message"]) <= 512)
    assert {(row["2"], row["3"]): row["1"] for row in table} == dict(expected)
    assert (f"unhandled error on GET /products/{BROKEN}", "catalog") in expected
    assert not any(row["2"].startswith("GET ") for row in table), "access lines are not errors"


@pytest.mark.system
def test_slowest_routes_averages_the_durations_per_service_and_route(
    es: ElasticsearchServer, kibana: tuple[dict[str, Any], dict[str, str]], indexed: dict[str, dict[str, Any]]
) -> None:
    # 4: service, 5: route, 1: count, 2: avg duration, 3: max duration
    table = _vis_rows(es, kibana, "msa-vis-slowest-routes")
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    for source in indexed.values():
        if "http.status_code" in source and source.get("http.route"):
            durations[(source["service"], source["http.route"])].append(source["http.duration_ms"])
    got = {(row["4"], row["5"]): row for row in table}
    assert set(got) == set(durations)
    for key, values in durations.items():
        row = got[key]
        assert row["1"] == len(values), key
        # The index keeps durations as 32-bit floats.
        assert row["2"] == pytest.approx(sum(values) / len(values), rel=1e-5), key
        assert row["3"] == pytest.approx(max(values), rel=1e-5), key
    # The services come slowest first (by their average), as the table shows them.
    by_service: dict[str, list[float]] = defaultdict(list)
    for (service, _), values in durations.items():
        by_service[service] += values
    order = list(dict.fromkeys(row["4"] for row in table))
    averages = [sum(by_service[s]) / len(by_service[s]) for s in order]
    assert averages == sorted(averages, reverse=True)
    assert ("gateway-web", "/api/products/{product_id}") in got
