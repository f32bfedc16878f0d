"""deploy/logstash, checked without Logstash: a parser of the pipeline grammar, then the pipelines'
wiring against the chassis (port, codec), the ops-dashboard (alerts channel), docker-compose.yml
(host names) and the Elasticsearch template (index names).

The parser follows Logstash's own grammar (logstash-core/lib/logstash/config/grammar.treetop):
sections, plugins with ``name => value`` attributes separated by whitespace, barewords of two or
more characters, strings, numbers, arrays, hashes, plugin-valued attributes (codecs), and
``if / else if / else`` branches with comparisons, ``in`` / ``not in``, regexp matches, ``!`` and
``and / or / xor / nand``. PyPI ``logstash-pipeline-parser`` 0.0.3 parses the same files but is
pre-alpha, turns values into Python types the grammar does not have (``false`` -> False, ``path``
-> Path) and returns untyped nested lists, so the grammar is written out here instead.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LOGSTASH = REPO / "deploy" / "logstash"
CONTAINER_PIPELINE_DIR = "/usr/share/logstash/pipeline"


# ---------------------------------------------------------------- the grammar


class LogstashSyntaxError(ValueError):
    pass


@dataclass
class Plugin:
    name: str
    attributes: list[tuple[str, Any]]

    def get(self, key: str, default: Any = None) -> Any:
        values = [value for name, value in self.attributes if name == key]
        return values[-1] if values else default


@dataclass
class Selector:
    path: list[str]  # [level] -> ["level"], [http][status] -> ["http", "status"]


@dataclass
class Regexp:
    pattern: str


@dataclass
class Compare:
    left: Any
    op: str
    right: Any


@dataclass
class Membership:
    left: Any
    right: Any
    negated: bool


@dataclass
class Not:
    operand: Any


@dataclass
class Condition:
    operands: list[Any]
    operators: list[str]  # between operands: and / or / xor / nand


@dataclass
class Clause:
    condition: Condition | None  # None for `else`
    body: list[Plugin | Branch]


@dataclass
class Branch:
    clauses: list[Clause]


@dataclass
class Section:
    kind: str  # input / filter / output
    body: list[Plugin | Branch]


@dataclass
class PipelineConfig:
    sections: list[Section] = field(default_factory=list)

    def plugins(self, kind: str) -> list[tuple[Plugin, list[Condition | None]]]:
        """Every plugin of the sections of ``kind``, with the conditions that guard it."""
        found: list[tuple[Plugin, list[Condition | None]]] = []

        def walk(body: list[Plugin | Branch], guards: list[Condition | None]) -> None:
            for node in body:
                if isinstance(node, Plugin):
                    found.append((node, guards))
                else:
                    for clause in node.clauses:
                        walk(clause.body, [*guards, clause.condition])

        for section in self.sections:
            if section.kind == kind:
                walk(section.body, [])
        return found


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    # -- lexical helpers
    def fail(self, expected: str) -> LogstashSyntaxError:
        line = self.text.count("\n", 0, self.pos) + 1
        column = self.pos - (self.text.rfind("\n", 0, self.pos) + 1) + 1
        near = self.text[self.pos : self.pos + 20].split("\n")[0]
        return LogstashSyntaxError(f"line {line} column {column}: expected {expected}, found {near!r}")

    def cs(self) -> None:
        """Comments and whitespace (``cs`` in the grammar)."""
        while True:
            match = re.compile(r"[ \t\r\n]+|#[^\r\n]*").match(self.text, self.pos)
            if not match or match.end() == self.pos:
                return
            self.pos = match.end()

    def whitespace(self) -> bool:
        match = re.compile(r"[ \t\r\n]+").match(self.text, self.pos)
        if match:
            self.pos = match.end()
        return match is not None

    def literal(self, token: str) -> bool:
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: str) -> None:
        if not self.literal(token):
            raise self.fail(repr(token))

    def regex(self, pattern: str) -> str | None:
        match = re.compile(pattern).match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group(0)

    def keyword(self, word: str) -> bool:
        """``word`` not followed by a name character (so `iffy` is not `if`)."""
        if re.compile(re.escape(word) + r"(?![A-Za-z0-9_-])").match(self.text, self.pos):
            self.pos += len(word)
            return True
        return False

    # -- structure
    def config(self) -> PipelineConfig:
        config = PipelineConfig()
        self.cs()
        config.sections.append(self.plugin_section())
        while True:
            self.cs()
            if self.pos == len(self.text):
                return config
            config.sections.append(self.plugin_section())

    def plugin_section(self) -> Section:
        for kind in ("input", "filter", "output"):
            if self.keyword(kind):
                self.cs()
                self.expect("{")
                return Section(kind, self.block_body())
        raise self.fail("input, filter or output")

    def block_body(self) -> list[Plugin | Branch]:
        body: list[Plugin | Branch] = []
        self.cs()
        while not self.literal("}"):
            if self.pos == len(self.text):
                raise self.fail("'}'")
            body.append(self.branch() if self.at_keyword("if") else self.plugin())
            self.cs()
        return body

    def at_keyword(self, word: str) -> bool:
        start = self.pos
        found = self.keyword(word)
        self.pos = start
        return found

    def plugin(self) -> Plugin:
        name = self.name()
        self.cs()
        self.expect("{")
        self.cs()
        attributes: list[tuple[str, Any]] = []
        if not self.literal("}"):
            attributes.append(self.attribute())
            while True:
                end = self.pos
                self.cs()
                if self.literal("}"):
                    break
                if not self.text[end : end + 1].isspace():  # `whitespace cs attribute`
                    raise self.fail("whitespace between attributes")
                attributes.append(self.attribute())
        return Plugin(name, attributes)

    def name(self) -> str:
        bare = self.regex(r"[A-Za-z0-9_-]+")
        if bare is not None:
            return bare
        if self.text[self.pos : self.pos + 1] in ('"', "'"):
            return self.string()
        raise self.fail("a name")

    def attribute(self) -> tuple[str, Any]:
        name = self.name()
        self.cs()
        self.expect("=>")
        self.cs()
        return name, self.value()

    def value(self) -> Any:
        start = self.pos
        if re.compile(r"[A-Za-z0-9_-]+[ \t\r\n]*(#[^\n]*\n[ \t\r\n]*)*\{").match(self.text, self.pos):
            return self.plugin()  # e.g. codec => json_lines { charset => "UTF-8" }
        self.pos = start
        char = self.text[self.pos : self.pos + 1]
        if char in ('"', "'"):
            return self.string()
        if char == "[":
            return self.array()
        if char == "{":
            return self.hash()
        number = self.number()
        if number is not None:
            return number
        bare = self.regex(r"[A-Za-z_][A-Za-z0-9_]+")
        if bare is not None:
            return bare
        raise self.fail("a value (bareword, string, number, array, hash or plugin)")

    def string(self) -> str:
        quote = self.text[self.pos]
        match = re.compile(quote + r"((?:\\" + quote + r"|(?!" + quote + r").)*)" + quote, re.S).match(
            self.text, self.pos
        )
        if match is None:
            raise self.fail("a closed string")
        self.pos = match.end()
        return match.group(1)

    def number(self) -> int | float | None:
        raw = self.regex(r"-?[0-9]+(\.[0-9]*)?")
        if raw is None:
            return None
        return float(raw) if "." in raw else int(raw)

    def array(self) -> list[Any]:
        self.expect("[")
        self.cs()
        items: list[Any] = []
        if not self.literal("]"):
            items.append(self.value())
            self.cs()
            while self.literal(","):
                self.cs()
                items.append(self.value())
                self.cs()
            self.expect("]")
        return items

    def hash(self) -> dict[Any, Any]:
        self.expect("{")
        self.cs()
        entries: dict[Any, Any] = {}
        while not self.literal("}"):
            key: Any = self.number()
            if key is None:
                char = self.text[self.pos : self.pos + 1]
                key = self.string() if char in ('"', "'") else self.regex(r"[A-Za-z_][A-Za-z0-9_]+")
            if key is None:
                raise self.fail("a hash key")
            self.cs()
            self.expect("=>")
            self.cs()
            entries[key] = self.value()
            self.cs()
        return entries

    # -- conditionals
    def branch(self) -> Branch:
        self.keyword("if")
        clauses = [self.clause_after_keyword()]
        while True:
            start = self.pos
            self.cs()
            if not self.keyword("else"):
                self.pos = start
                return Branch(clauses)
            self.cs()
            if self.keyword("if"):
                clauses.append(self.clause_after_keyword())
                continue
            self.expect("{")
            clauses.append(Clause(None, self.block_body()))
            return Branch(clauses)

    def clause_after_keyword(self) -> Clause:
        self.cs()
        condition = self.condition()
        self.cs()
        self.expect("{")
        return Clause(condition, self.block_body())

    def condition(self) -> Condition:
        operands, operators = [self.expression()], []
        while True:
            start = self.pos
            self.cs()
            operator = next((op for op in ("and", "or", "xor", "nand") if self.keyword(op)), None)
            if operator is None:
                self.pos = start
                return Condition(operands, operators)
            self.cs()
            operators.append(operator)
            operands.append(self.expression())

    def expression(self) -> Any:
        if self.literal("("):
            self.cs()
            inner = self.condition()
            self.cs()
            self.expect(")")
            return inner
        if self.literal("!"):
            self.cs()
            if self.literal("("):
                self.cs()
                inner = self.condition()
                self.cs()
                self.expect(")")
                return Not(inner)
            return Not(self.selector())
        left = self.rvalue()
        start = self.pos
        self.cs()
        if self.keyword("in"):
            self.cs()
            return Membership(left, self.rvalue(), negated=False)
        if self.literal("not "):
            self.cs()
            self.expect("in")
            self.cs()
            return Membership(left, self.rvalue(), negated=True)
        for op in ("==", "!=", "<=", ">=", "=~", "!~", "<", ">"):
            if self.literal(op):
                self.cs()
                if op in ("=~", "!~"):
                    char = self.text[self.pos : self.pos + 1]
                    right: Any = self.string() if char in ('"', "'") else self.regexp()
                else:
                    right = self.rvalue()
                return Compare(left, op, right)
        self.pos = start
        return left

    def rvalue(self) -> Any:
        char = self.text[self.pos : self.pos + 1]
        if char in ('"', "'"):
            return self.string()
        if char == "/":
            return self.regexp()
        number = self.number()
        if number is not None:
            return number
        if char == "[":
            start = self.pos
            try:
                return self.selector()
            except LogstashSyntaxError:
                self.pos = start
                return self.array()
        method = self.regex(r"[A-Za-z_][A-Za-z0-9_]+")
        if method is not None:
            self.cs()
            self.expect("(")
            self.cs()
            args = [] if self.text[self.pos : self.pos + 1] == ")" else [self.rvalue()]
            while self.literal(","):
                self.cs()
                args.append(self.rvalue())
                self.cs()
            self.expect(")")
            return ("call", method, args)
        raise self.fail("a string, number, [field], array, method call or /regexp/")

    def selector(self) -> Selector:
        elements = []
        while (element := self.regex(r"\[[^\]\[,]+\]")) is not None:
            elements.append(element[1:-1])
        if not elements:
            raise self.fail("a field reference like [field]")
        return Selector(elements)

    def regexp(self) -> Regexp:
        match = re.compile(r"/((?:\\/|[^/])*)/").match(self.text, self.pos)
        if match is None:
            raise self.fail("a /regexp/")
        self.pos = match.end()
        return Regexp(match.group(1))


def parse_pipeline(text: str) -> PipelineConfig:
    return _Parser(text).config()


def evaluate(condition: Any, event: dict[str, Any]) -> bool:
    """Enough of Logstash's condition semantics for the conditions of our pipelines."""

    def value(node: Any) -> Any:
        if isinstance(node, Selector):
            current: Any = event
            for part in node.path:
                current = current.get(part) if isinstance(current, dict) else None
            return current
        if isinstance(node, Condition):
            return evaluate(node, event)
        return node

    if isinstance(condition, Condition):
        result = bool(evaluate(condition.operands[0], event))
        for op, operand in zip(condition.operators, condition.operands[1:], strict=True):
            right = bool(evaluate(operand, event))
            result = {
                "and": result and right,
                "or": result or right,
                "xor": result != right,
                "nand": not (result and right),
            }[op]
        return result
    if isinstance(condition, Compare):
        left, right = value(condition.left), value(condition.right)
        if condition.op in ("=~", "!~"):
            pattern = right.pattern if isinstance(right, Regexp) else right
            found = isinstance(left, str) and re.search(pattern, left) is not None
            return found if condition.op == "=~" else not found
        if condition.op in ("==", "!="):
            return (left == right) == (condition.op == "==")
        if left is None or right is None:
            return False
        return bool(
            {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[condition.op]
        )
    if isinstance(condition, Membership):
        left, right = value(condition.left), value(condition.right)
        inside = right is not None and left in right
        return not inside if condition.negated else inside
    if isinstance(condition, Not):
        return not evaluate(condition.operand, event)
    return bool(value(condition))


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


def _pipeline(pipeline_id: str) -> PipelineConfig:
    entries = {
        entry["pipeline.id"]: entry for entry in yaml.safe_load((LOGSTASH / "pipelines.yml").read_text())
    }
    container_path = entries[pipeline_id]["path.config"]
    assert container_path.startswith(CONTAINER_PIPELINE_DIR + "/")
    local = LOGSTASH / "pipeline" / container_path.removeprefix(CONTAINER_PIPELINE_DIR + "/")
    return parse_pipeline(local.read_text())


def _only(
    plugins: list[tuple[Plugin, list[Condition | None]]], name: str
) -> tuple[Plugin, list[Condition | None]]:
    matching = [(p, g) for p, g in plugins if p.name == name]
    assert len(matching) == 1, f"expected one {name}, found {len(matching)}"
    return matching[0]


def test_pipelines_yml_names_exactly_ingest_and_index_and_every_file_parses() -> None:
    entries = yaml.safe_load((LOGSTASH / "pipelines.yml").read_text())
    assert [entry["pipeline.id"] for entry in entries] == ["ingest", "index"]
    referenced = {Path(entry["path.config"]).name for entry in entries}
    on_disk = {path.name for path in (LOGSTASH / "pipeline").iterdir()}
    assert referenced == on_disk, "every pipeline file is loaded, and only those (the image default is gone)"
    for entry in entries:
        assert "*" not in entry["path.config"], "one file per pipeline: a glob would merge pipelines"
        _pipeline(entry["pipeline.id"])


def test_ingest_takes_python_logstash_over_tcp_and_udp_and_pushes_onto_the_redis_list() -> None:
    config = _pipeline("ingest")
    inputs = config.plugins("input")
    tcp, _ = _only(inputs, "tcp")
    udp, _ = _only(inputs, "udp")
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
    config = _pipeline("index")
    redis_in, _ = _only(config.plugins("input"), "redis")
    assert redis_in.get("data_type") == "list"
    assert redis_in.get("key") == "msa:logs"
    outputs = config.plugins("output")
    es, es_guards = _only(outputs, "elasticsearch")
    assert es_guards == [], "every event is indexed"
    assert es.get("index") == "msa-logs-%{+YYYY.MM.dd}"
    assert es.get("data_stream") == "false"
    assert es.get("manage_template") == "false", "the elasticsearch-setup job owns the template"
    alerts, guards = _only(outputs, "redis")
    assert alerts.get("data_type") == "channel"
    assert alerts.get("key") == "msa:alerts"
    assert alerts.get("codec") == "json"
    (guard,) = guards
    for level, alerted in [("CRITICAL", True), ("ERROR", True), ("WARNING", False), ("INFO", False)]:
        assert evaluate(guard, {"level": level}) is alerted, level
    assert not evaluate(guard, {"message": "no level at all"})


def test_logstash_port_and_codec_match_the_chassis() -> None:
    from logstash import TCPLogstashHandler

    from chassis.logging import _LogstashHandler
    from chassis.settings import ServiceSettings

    assert issubclass(_LogstashHandler, TCPLogstashHandler), "the chassis sends JSON lines over TCP"
    tcp, _ = _only(_pipeline("ingest").plugins("input"), "tcp")
    assert tcp.get("codec") == "json_lines"
    assert ServiceSettings.model_fields["logstash_port"].default == tcp.get("port")
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    env = compose["x-python-env"]
    assert env["LOGSTASH_HOST"] == "logstash"
    assert "logstash" in compose["services"]
    assert int(env["LOGSTASH_PORT"]) == tcp.get("port")


def test_alerts_channel_is_the_one_the_ops_dashboard_subscribes_to() -> None:
    from ops_dashboard.live.feed import ALERTS_CHANNEL

    alerts, _ = _only(_pipeline("index").plugins("output"), "redis")
    assert alerts.get("key") == ALERTS_CHANNEL


def test_hosts_are_compose_services() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    ingest, index = _pipeline("ingest"), _pipeline("index")
    redis_hosts = [
        *_only(ingest.plugins("output"), "redis")[0].get("host"),
        _only(index.plugins("input"), "redis")[0].get("host"),
        *_only(index.plugins("output"), "redis")[0].get("host"),
    ]
    assert set(redis_hosts) == {"redis"}
    assert "redis" in services
    es, _ = _only(index.plugins("output"), "elasticsearch")
    assert es.get("hosts") == ["http://elasticsearch:9200"]
    assert "elasticsearch" in services


def test_daily_index_name_is_covered_by_the_template_and_the_data_view() -> None:
    template = json.loads((REPO / "deploy/elasticsearch/index-template.json").read_text())
    es, _ = _only(_pipeline("index").plugins("output"), "elasticsearch")
    example = es.get("index").replace("%{+YYYY.MM.dd}", "2026.01.31")
    assert any(fnmatch.fnmatch(example, pattern) for pattern in template["index_patterns"])
    # The built-in logs-*-* template would turn plain index requests into data-stream errors.
    assert not fnmatch.fnmatch(example, "logs-*-*")
    objects = [
        json.loads(line) for line in (REPO / "deploy/kibana/saved-objects.ndjson").read_text().splitlines()
    ]
    (view,) = [o for o in objects if o["type"] == "index-pattern"]
    assert fnmatch.fnmatch(example, view["attributes"]["title"])
