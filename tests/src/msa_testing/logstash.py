"""Logstash without Logstash: the pipeline grammar, the pipelines of deploy/logstash, a TCP listener
that stands in for Logstash's input, and a model of what the two pipelines do to an event.

The parser follows Logstash's own grammar (logstash-core/lib/logstash/config/grammar.treetop):
sections, plugins with ``name => value`` attributes separated by whitespace, barewords of two or
more characters, strings, numbers, arrays, hashes, plugin-valued attributes (codecs), and
``if / else if / else`` branches with comparisons, ``in`` / ``not in``, regexp matches, ``!`` and
``and / or / xor / nand``. PyPI ``logstash-pipeline-parser`` 0.0.3 parses the same files but is
pre-alpha, turns values into Python types the grammar does not have (``false`` -> False, ``path``
-> Path) and returns untyped nested lists, so the grammar is written out here instead.

``through_pipelines`` runs captured bytes through what ``ingest`` and ``index`` are configured to
do, reading the configuration rather than assuming it: a plugin or option the model does not know
raises instead of being skipped, so a change to the pipelines shows up in the tests that use it.
"""

from __future__ import annotations

import json
import re
import socketserver
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from msa_testing.fixtures import REPO

__all__ = [
    "CONTAINER_PIPELINE_DIR",
    "LOGSTASH",
    "Branch",
    "Clause",
    "Compare",
    "Condition",
    "IndexedEvent",
    "LogCollector",
    "LogstashSyntaxError",
    "Membership",
    "Not",
    "PipelineConfig",
    "Plugin",
    "Regexp",
    "Section",
    "Selector",
    "apply_filters",
    "codec_name",
    "ecs_enabled",
    "evaluate",
    "json_lines",
    "only",
    "parse_pipeline",
    "pipeline",
    "sprintf",
    "through_pipelines",
]

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
        operands: list[Any] = [self.expression()]
        operators: list[str] = []
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
            return bool(left == right) == (condition.op == "==")
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


# ---------------------------------------------------------------- the pipelines of deploy/logstash


def _entries() -> dict[str, dict[str, Any]]:
    return {entry["pipeline.id"]: entry for entry in yaml.safe_load((LOGSTASH / "pipelines.yml").read_text())}


def pipeline(pipeline_id: str) -> PipelineConfig:
    """The parsed configuration of one pipeline of pipelines.yml, read from the repository."""
    container_path = _entries()[pipeline_id]["path.config"]
    if not container_path.startswith(CONTAINER_PIPELINE_DIR + "/"):
        raise ValueError(f"{pipeline_id}: {container_path} is not under {CONTAINER_PIPELINE_DIR}")
    local = LOGSTASH / "pipeline" / container_path.removeprefix(CONTAINER_PIPELINE_DIR + "/")
    return parse_pipeline(local.read_text())


def only(
    plugins: list[tuple[Plugin, list[Condition | None]]], name: str
) -> tuple[Plugin, list[Condition | None]]:
    matching = [(p, g) for p, g in plugins if p.name == name]
    if len(matching) != 1:
        raise AssertionError(f"expected one {name}, found {len(matching)}")
    return matching[0]


# ---------------------------------------------------------------- a stand-in for the tcp input


class LogCollector(socketserver.ThreadingTCPServer):
    """A TCP listener on a free loopback port recording every byte sent to it: point a service's
    LOGSTASH_HOST/LOGSTASH_PORT here to see exactly what it sends to Logstash."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CollectorHandler)
        self.received = bytearray()
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def data(self) -> bytes:
        with self.lock:
            return bytes(self.received)

    def __enter__(self) -> LogCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _CollectorHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, LogCollector)
        self.request.settimeout(10)
        while True:
            try:
                chunk = self.request.recv(65536)
            except (TimeoutError, OSError):
                return
            if not chunk:
                return
            with server.lock:
                server.received.extend(chunk)


def json_lines(stream: bytes) -> list[dict[str, Any]]:
    """What Logstash's json_lines codec does: split on newlines; a trailing partial line is not an event."""
    *complete, rest = stream.split(b"\n")
    if rest != b"":
        raise ValueError("the last event must end with a newline, or json_lines holds it back")
    return [json.loads(line) for line in complete if line.strip()]


# ---------------------------------------------------------------- what the pipelines do to an event


@dataclass
class IndexedEvent:
    """One event as the index pipeline hands it on: its daily index, its source, and whether it is
    also published on the alerts channel."""

    index: str
    source: dict[str, Any]
    alerted: bool = False
    alert_channel: str | None = field(default=None, repr=False)


def field_path(reference: str) -> list[str]:
    """A Logstash field reference: ``[event][original]`` -> ["event", "original"], ``level`` -> ["level"]."""
    if not reference.startswith("["):
        return [reference]
    parts = re.findall(r"\[([^\]\[]+)\]", reference)
    if "".join(f"[{p}]" for p in parts) != reference:
        raise ValueError(f"not a field reference: {reference!r}")
    return parts


def _remove(event: dict[str, Any], path: list[str]) -> None:
    # Like Logstash's Accessors.del: the parent stays, even when it is left empty.
    node: Any = event
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


def apply_filters(config: PipelineConfig, event: dict[str, Any]) -> dict[str, Any] | None:
    """The filter sections run on one event (None: dropped). Only what our pipelines use is modelled."""

    def run(body: list[Plugin | Branch]) -> bool:
        for node in body:
            if isinstance(node, Branch):
                for clause in node.clauses:
                    if clause.condition is None or evaluate(clause.condition, event):
                        if not run(clause.body):
                            return False
                        break
            elif node.name == "drop":
                return False
            elif node.name == "mutate":
                for option, value in node.attributes:
                    if option != "remove_field":
                        raise NotImplementedError(f"mutate {option} is not modelled")
                    for reference in value if isinstance(value, list) else [value]:
                        _remove(event, field_path(reference))
            else:
                raise NotImplementedError(f"filter {node.name} is not modelled")
        return True

    for section in config.sections:
        if section.kind == "filter" and not run(section.body):
            return None
    return event


_JODA = {"YYYY": "%Y", "yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H"}


def sprintf(template: str, event: dict[str, Any]) -> str:
    """Logstash's ``%{...}``: ``%{+<Joda date>}`` formats @timestamp in UTC, ``%{field}`` inserts a value."""

    def one(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner.startswith("+"):
            when = _timestamp(event["@timestamp"])
            tokens = re.split(r"([A-Za-z]+)", inner[1:])
            out = []
            for token in tokens:
                if token.isalpha():
                    if token not in _JODA:
                        raise NotImplementedError(f"Joda pattern {token} is not modelled")
                    out.append(when.strftime(_JODA[token]))
                else:
                    out.append(token)
            return "".join(out)
        node: Any = event
        for part in field_path(inner):
            node = node.get(part) if isinstance(node, dict) else None
        return match.group(0) if node is None else str(node)

    return re.sub(r"%\{([^}]+)\}", one, template)


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _logstash_event(decoded: dict[str, Any]) -> dict[str, Any]:
    """LogStash::Event.new: @timestamp parsed (now when missing), @version "1" when missing."""
    event = dict(decoded)
    stamp = _timestamp(event["@timestamp"]) if "@timestamp" in event else datetime.now(UTC)
    # Logstash writes its Timestamp back as ISO-8601 UTC; python-logstash's millisecond form is kept.
    event["@timestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
    event.setdefault("@version", "1")
    return event


def _decode_json_lines(stream: bytes) -> list[dict[str, Any]]:
    events = []
    *complete, _held_back = stream.split(b"\n")
    for line in complete:
        if not line.strip():
            continue
        try:
            events.append(_logstash_event(json.loads(line)))
        except ValueError:
            events.append(
                _logstash_event({"message": line.decode(errors="replace"), "tags": ["_jsonparsefailure"]})
            )
    return events


def codec_name(plugin: Plugin, default: str) -> str:
    codec = plugin.get("codec", default)
    if isinstance(codec, Plugin):
        unknown = [name for name, _ in codec.attributes if name != "ecs_compatibility"]
        if unknown:
            raise NotImplementedError(f"codec {codec.name} options {unknown} are not modelled")
        return codec.name
    return str(codec)


def ecs_enabled(pipeline_id: str, plugin: Plugin) -> bool:
    """ECS compatibility of a plugin's codec: the codec's own setting, else the pipeline's (v8 by default)."""
    level = str(_entries()[pipeline_id].get("pipeline.ecs_compatibility", "v8"))
    codec = plugin.get("codec")
    if isinstance(codec, Plugin):
        level = str(codec.get("ecs_compatibility", level))
    return level != "disabled"


def through_pipelines(stream: bytes) -> list[IndexedEvent]:
    """What ``ingest`` then ``index`` do to the bytes services send to the tcp input."""
    ingest, index = pipeline("ingest"), pipeline("index")
    tcp, _ = only(ingest.plugins("input"), "tcp")
    if codec_name(tcp, "line") != "json_lines":
        raise NotImplementedError(f"tcp codec {codec_name(tcp, 'line')} is not modelled")
    outputs = ingest.plugins("output")
    if [(p.name, g) for p, g in outputs] != [("redis", [])] or outputs[0][0].get("data_type") != "list":
        raise NotImplementedError("ingest outputs other than one unconditional redis list are not modelled")
    list_out = outputs[0][0]
    if codec_name(list_out, "json") != "json":
        raise NotImplementedError("a redis output codec other than json is not modelled")
    queue: list[str] = []
    for event in _decode_json_lines(stream):
        kept = apply_filters(ingest, event)
        if kept is not None:
            queue.append(json.dumps(kept))  # the redis output's json codec: Event#to_json

    list_in, _ = only(index.plugins("input"), "redis")
    if (list_in.get("data_type"), list_in.get("key")) != ("list", list_out.get("key")):
        raise AssertionError("the index pipeline does not read the list the ingest pipeline writes")
    if codec_name(list_in, "json") != "json":
        raise NotImplementedError("a redis input codec other than json is not modelled")
    indexed = []
    for raw in queue:
        event = _logstash_event(json.loads(raw))
        if ecs_enabled("index", list_in):  # the json codec under ECS keeps the raw JSON in [event][original]
            event.setdefault("event", {}).setdefault("original", raw)
        kept = apply_filters(index, event)
        if kept is None:
            continue
        result: IndexedEvent | None = None
        alerted, channel = False, None
        for plugin, guards in index.plugins("output"):
            if not all(g is None or evaluate(g, kept) for g in guards):
                continue
            if plugin.name == "elasticsearch":
                if plugin.get("data_stream") != "false":
                    raise NotImplementedError("only plain indices (data_stream => false) are modelled")
                result = IndexedEvent(sprintf(plugin.get("index"), kept), kept)
            elif plugin.name == "redis" and plugin.get("data_type") == "channel":
                alerted, channel = True, plugin.get("key")
            else:
                raise NotImplementedError(f"output {plugin.name} is not modelled")
        if result is not None:
            result.alerted, result.alert_channel = alerted, channel
            indexed.append(result)
    return indexed
