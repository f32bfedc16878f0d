"""deploy/logstash, checked without Logstash: the pipeline grammar (msa_testing.logstash), then the
pipelines' wiring against the chassis (port, codec), the ops-dashboard (alerts channel),
docker-compose.yml (host names) and the Elasticsearch template (index names), and the model of
what the pipelines do to an event that tests/test_elasticsearch_real.py indexes for real.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest
import yaml

from msa_testing.logstash import (
    LOGSTASH,
    LogstashSyntaxError,
    Plugin,
    apply_filters,
    codec_name,
    ecs_enabled,
    evaluate,
    field_path,
    only,
    parse_pipeline,
    pipeline,
    sprintf,
    through_pipelines,
)

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the grammar, tested


def test_parser_reads_the_grammar_features() -> None:
    text = """
    # a comment before everything
    input { tcp { port => 5959 codec => json_lines { charset => "UTF-8" } } }   # trailing comment
    filter {
      if [level] in ["ERROR", "CRITICAL"] and ![ignore] {
        mutate { add_field => { "alert" => "yes" 'n' => 1 } remove_field => ['a', "b"] }
      } else if [http][status_code] >= 500 or ([message] =~ /time ?out/ xor "x" not in [tags]) {
        drop {}
      } else {
        noop { }
      }
    }
    output { stdout { codec => rubydebug } }
    """
    config = parse_pipeline(text)
    assert [s.kind for s in config.sections] == ["input", "filter", "output"]
    tcp, guards = config.plugins("input")[0]
    assert tcp.get("port") == 5959
    assert guards == []
    codec = tcp.get("codec")
    assert isinstance(codec, Plugin)
    assert codec.name == "json_lines"
    assert codec.get("charset") == "UTF-8"
    filters = config.plugins("filter")
    assert [(p.name, len(g)) for p, g in filters] == [("mutate", 1), ("drop", 1), ("noop", 1)]
    assert filters[0][0].get("add_field") == {"alert": "yes", "n": 1}
    assert filters[2][1] == [None]  # else
    first_guard = filters[0][1][0]
    assert evaluate(first_guard, {"level": "ERROR"})
    assert not evaluate(first_guard, {"level": "ERROR", "ignore": True})
    assert not evaluate(first_guard, {"level": "INFO"})
    second_guard = filters[1][1][0]
    assert evaluate(second_guard, {"http": {"status_code": 503}})
    assert not evaluate(second_guard, {"http": {"status_code": 404}, "message": "ok", "tags": ["x"]})
    assert evaluate(second_guard, {"message": "read timeout", "tags": ["x"]})


@pytest.mark.parametrize(
    "text",
    [
        "input { tcp { port => } }",  # value missing
        "input { tcp { port => 1 }",  # section never closed
        'input { tcp { port => "a"codec => json } }',  # attributes must be separated by whitespace
        "inputs { tcp { } }",  # no such section
        "input { tcp { port => 1 } } garbage",  # trailing text
        "output { if [a] == { x {} } }",  # a comparison needs a right-hand value
        "filter { else { drop {} } }",  # else without if
        'input { tcp { host => "unterminated } }',  # string never closed
        "input { tcp { mode => s } }",  # a bareword has at least two characters
        "filter { if [a] { drop {} } else if { drop {} } }",  # else if without a condition
        'input { tcp { port => 1 "x" } }',  # a name without => value
        "input { tcp { port => [1, 2 } }",  # array never closed
        "",  # at least one section
    ],
)
def test_parser_rejects_broken_configs(text: str) -> None:
    with pytest.raises(LogstashSyntaxError):
        parse_pipeline(text)


# ---------------------------------------------------------------- our pipelines


def test_pipelines_yml_names_exactly_ingest_and_index_and_every_file_parses() -> None:
    entries = yaml.safe_load((LOGSTASH / "pipelines.yml").read_text())
    assert [entry["pipeline.id"] for entry in entries] == ["ingest", "index"]
    referenced = {Path(entry["path.config"]).name for entry in entries}
    on_disk = {path.name for path in (LOGSTASH / "pipeline").iterdir()}
    assert referenced == on_disk, "every pipeline file is loaded, and only those (the image default is gone)"
    for entry in entries:
        assert "*" not in entry["path.config"], "one file per pipeline: a glob would merge pipelines"
        pipeline(entry["pipeline.id"])


def test_ingest_takes_python_logstash_over_tcp_and_udp_and_pushes_onto_the_redis_list() -> None:
    config = pipeline("ingest")
    inputs = config.plugins("input")
    tcp, _ = only(inputs, "tcp")
    udp, _ = only(inputs, "udp")
    assert tcp.get("port") == udp.get("port") == 5959
    assert tcp.get("codec") == "json_lines"  # TCPLogstashHandler: one JSON object per line
    assert udp.get("codec") == "json"  # UDPLogstashHandler: one JSON object per datagram
    assert config.plugins("filter") == []
    outputs = config.plugins("output")
    assert [p.name for p, _ in outputs] == ["redis"]
    redis, guards = outputs[0]
    assert guards == []
    assert redis.get("data_type") == "list"
    assert redis.get("key") == "msa:logs"
    assert redis.get("batch") == "true"
    assert redis.get("batch_events") > 1
    assert redis.get("congestion_threshold") > 0, "backpressure instead of an unbounded list"


def test_index_pops_the_list_into_daily_indices_and_publishes_errors_as_alerts() -> None:
    config = pipeline("index")
    redis_in, _ = only(config.plugins("input"), "redis")
    assert redis_in.get("data_type") == "list"
    assert redis_in.get("key") == "msa:logs"
    outputs = config.plugins("output")
    es, es_guards = only(outputs, "elasticsearch")
    assert es_guards == [], "every event is indexed"
    assert es.get("index") == "msa-logs-%{+YYYY.MM.dd}"
    assert es.get("data_stream") == "false"
    assert es.get("manage_template") == "false", "the elasticsearch-setup job owns the template"
    alerts, guards = only(outputs, "redis")
    assert alerts.get("data_type") == "channel"
    assert alerts.get("key") == "msa:alerts"
    assert alerts.get("codec") == "json"
    (guard,) = guards
    for level, alerted in [("CRITICAL", True), ("ERROR", True), ("WARNING", False), ("INFO", False)]:
        assert evaluate(guard, {"level": level}) is alerted, level
    assert not evaluate(guard, {"message": "no level at all"})


def test_logstash_port_and_codec_match_the_chassis() -> None:
    from logstash import TCPLogstashHandler

    from chassis import ServiceSettings
    from chassis.logging import _LogstashHandler

    assert issubclass(_LogstashHandler, TCPLogstashHandler), "the chassis sends JSON lines over TCP"
    tcp, _ = only(pipeline("ingest").plugins("input"), "tcp")
    assert tcp.get("codec") == "json_lines"
    assert ServiceSettings.model_fields["logstash_port"].default == tcp.get("port")
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    env = compose["x-python-env"]
    assert env["LOGSTASH_HOST"] == "logstash"
    assert "logstash" in compose["services"]
    assert int(env["LOGSTASH_PORT"]) == tcp.get("port")


def test_alerts_channel_is_the_one_the_ops_dashboard_subscribes_to() -> None:
    from ops_dashboard.live.feed import ALERTS_CHANNEL

    alerts, _ = only(pipeline("index").plugins("output"), "redis")
    assert alerts.get("key") == ALERTS_CHANNEL


def test_hosts_are_compose_services() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    ingest, index = pipeline("ingest"), pipeline("index")
    redis_hosts = [
        *only(ingest.plugins("output"), "redis")[0].get("host"),
        only(index.plugins("input"), "redis")[0].get("host"),
        *only(index.plugins("output"), "redis")[0].get("host"),
    ]
    assert set(redis_hosts) == {"redis"}
    assert "redis" in services
    es, _ = only(index.plugins("output"), "elasticsearch")
    assert es.get("hosts") == ["http://elasticsearch:9200"]
    assert "elasticsearch" in services


def test_daily_index_name_is_covered_by_the_template_and_the_data_view() -> None:
    template = json.loads((REPO / "deploy/elasticsearch/index-template.json").read_text())
    es, _ = only(pipeline("index").plugins("output"), "elasticsearch")
    example = es.get("index").replace("%{+YYYY.MM.dd}", "2026.01.31")
    assert any(fnmatch.fnmatch(example, pattern) for pattern in template["index_patterns"])
    # The built-in logs-*-* template would turn plain index requests into data-stream errors.
    assert not fnmatch.fnmatch(example, "logs-*-*")
    objects = [
        json.loads(line) for line in (REPO / "deploy/kibana/saved-objects.ndjson").read_text().splitlines()
    ]
    (view,) = [o for o in objects if o["type"] == "index-pattern"]
    assert fnmatch.fnmatch(example, view["attributes"]["title"])


# ---------------------------------------------------------------- the model of what they do to an event


def test_the_pipelines_index_each_line_daily_alert_on_errors_and_drop_the_codec_copy() -> None:
    info = {
        "@timestamp": "2026-01-31T23:59:59.123Z",
        "@version": "1",
        "message": "GET /products 200 1.0ms",
        "level": "INFO",
        "http.status_code": 200,
    }
    error = {"@timestamp": "2026-02-01T00:00:00.001Z", "message": "boom", "level": "ERROR"}
    lines = b"".join(json.dumps(event).encode() + b"\n" for event in (info, error))
    first, second, garbled = through_pipelines(lines + b"not json\n" + b'{"held": "back"')
    assert first.index == "msa-logs-2026.01.31", "the day of the event's @timestamp, in UTC"
    assert second.index == "msa-logs-2026.02.01"
    assert (first.alerted, second.alerted) == (False, True)
    assert second.alert_channel == "msa:alerts"
    # index.conf removes the json codec's [event] (its copy of the raw line) entirely.
    assert first.source == info
    assert second.source == {**error, "@version": "1"}
    assert garbled.source["tags"] == ["_jsonparsefailure"]
    assert garbled.source["message"] == "not json"


def test_the_filter_model_runs_mutate_and_drop_and_refuses_what_it_does_not_know() -> None:
    config = parse_pipeline(
        'filter { mutate { remove_field => ["[event][original]", "tmp"] } if [level] == "DEBUG" { drop {} } }'
    )
    event = {"event": {"original": "{}", "kind": "k"}, "tmp": 1, "level": "INFO"}
    assert apply_filters(config, event) == {"event": {"kind": "k"}, "level": "INFO"}
    assert apply_filters(config, {"level": "DEBUG"}) is None
    with pytest.raises(NotImplementedError, match="grok"):
        apply_filters(parse_pipeline('filter { grok { match => { "message" => "x" } } }'), {})
    with pytest.raises(NotImplementedError, match="rename"):
        apply_filters(parse_pipeline('filter { mutate { rename => { "a" => "b" } } }'), {"a": 1})


def test_the_model_reads_codec_options_it_knows_and_refuses_the_others() -> None:
    json_ecs_off = only(
        parse_pipeline("input { redis { codec => json { ecs_compatibility => disabled } } }").plugins(
            "input"
        ),
        "redis",
    )[0]
    assert codec_name(json_ecs_off, "json") == "json"
    assert not ecs_enabled("index", json_ecs_off)
    plain = only(parse_pipeline("input { redis { } }").plugins("input"), "redis")[0]
    assert ecs_enabled("index", plain), "Logstash 8 runs every pipeline with ECS v8 unless told otherwise"
    charset = only(
        parse_pipeline('input { redis { codec => json { charset => "CP1252" } } }').plugins("input"), "redis"
    )[0]
    with pytest.raises(NotImplementedError, match="charset"):
        codec_name(charset, "json")


def test_sprintf_formats_the_timestamp_in_utc_and_inserts_fields() -> None:
    event = {"@timestamp": "2026-03-01T00:30:00.000+01:00", "service": "catalog"}
    assert sprintf("msa-logs-%{+YYYY.MM.dd}", event) == "msa-logs-2026.02.28"
    assert sprintf("%{service}/%{[service]}/%{missing}", event) == "catalog/catalog/%{missing}"
    with pytest.raises(NotImplementedError, match="ww"):
        sprintf("%{+YYYY.ww}", event)
    assert field_path("[event][original]") == ["event", "original"]
    assert field_path("[http.status_code]") == ["http.status_code"]
