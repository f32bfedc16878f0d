"""The Kibana saved objects of deploy/kibana as the Elasticsearch requests Kibana makes for them.

Kibana turns a saved search's KQL and filters, and a visualization's ``visState.aggs``, into one
``_search`` request. This module does the same for what saved-objects.ndjson uses, so the tests
can run those requests against a real node:

- KQL: ``field:value``, ``field:"phrase"``, ``field:*``, ``field:(a or b)``, ``and`` / ``or`` /
  ``not`` and parentheses, translated the way @kbn/es-query's kuery functions do it (``is`` ->
  ``match`` / ``match_phrase`` / ``exists`` in a ``bool.should``; a field the data view does not
  have matches nothing). Anything else (free text, wildcards in values, ranges, nested fields)
  raises ``KqlError`` instead of being guessed at.
- aggregations: count (the bucket's doc_count), avg, max, terms (ordered by the count or by a
  metric, which is then also placed under that terms agg, as Kibana does) and date_histogram.
  Buckets nest in the order of ``visState.aggs``, keyed by agg id; metrics sit in the innermost
  bucket. ``interval: auto`` becomes the fixed interval nearest to the time range / 50 (Kibana's
  ``histogram:barTarget``), not Kibana's exact rounding table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from msa_testing.fixtures import REPO

__all__ = [
    "NDJSON",
    "KqlError",
    "TimeRange",
    "kql_to_dsl",
    "load_saved_objects",
    "rows",
    "saved_search_request",
    "visualization_aggs",
    "visualization_request",
]

NDJSON = REPO / "deploy" / "kibana" / "saved-objects.ndjson"


class KqlError(ValueError):
    """KQL outside the subset this translator knows."""


def load_saved_objects(path: Path = NDJSON) -> dict[str, dict[str, Any]]:
    """The saved objects by id."""
    objects = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {obj["id"]: obj for obj in objects}


# ---------------------------------------------------------------- KQL


_TOKEN = re.compile(r'\s*(?:(?P<punct>[():])|"(?P<quoted>(?:\\.|[^"\\])*)"|(?P<word>[^\s():"]+))')


def _tokens(query: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        match = _TOKEN.match(query, pos)
        if match is None:
            raise KqlError(f"cannot read {query[pos:]!r}")
        if match.group("punct") is not None:
            tokens.append(("punct", match.group("punct")))
        elif match.group("quoted") is not None:
            tokens.append(("quoted", re.sub(r"\\(.)", r"\1", match.group("quoted"))))
        else:
            word = match.group("word")
            kind = "keyword" if word.lower() in ("and", "or", "not") else "word"
            tokens.append((kind, word.lower() if kind == "keyword" else word))
        pos = match.end()
    return tokens


class _Kql:
    def __init__(self, query: str, fields: Mapping[str, str]) -> None:
        self.tokens = _tokens(query)
        self.pos = 0
        self.fields = fields

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> bool:
        token = self.peek()
        if token is not None and token[0] == kind and (value is None or token[1] == value):
            self.pos += 1
            return True
        return False

    def expect(self, kind: str, value: str) -> None:
        if not self.take(kind, value):
            raise KqlError(f"expected {value!r} at token {self.pos}: {self.peek()}")

    def parse(self) -> dict[str, Any]:
        if not self.tokens:
            return {"match_all": {}}
        query = self.or_expr(self.primary)
        if self.peek() is not None:
            raise KqlError(f"unexpected {self.peek()} at token {self.pos}")
        return query

    # Both levels (queries, and values after "field:") share the and/or/not structure.
    def or_expr(self, leaf: Any) -> dict[str, Any]:
        children = [self.and_expr(leaf)]
        while self.take("keyword", "or"):
            children.append(self.and_expr(leaf))
        return (
            children[0] if len(children) == 1 else {"bool": {"should": children, "minimum_should_match": 1}}
        )

    def and_expr(self, leaf: Any) -> dict[str, Any]:
        children = [self.not_expr(leaf)]
        while self.take("keyword", "and"):
            children.append(self.not_expr(leaf))
        return children[0] if len(children) == 1 else {"bool": {"filter": children}}

    def not_expr(self, leaf: Any) -> dict[str, Any]:
        if self.take("keyword", "not"):
            return {"bool": {"must_not": self.not_expr(leaf)}}
        if self.take("punct", "("):
            inner = self.or_expr(leaf)
            self.expect("punct", ")")
            return inner
        result: dict[str, Any] = leaf()
        return result

    def primary(self) -> dict[str, Any]:
        token = self.peek()
        if token is None or token[0] != "word":
            raise KqlError(f"expected a field name at token {self.pos}: {token}")
        self.pos += 1
        if not self.take("punct", ":"):
            raise KqlError(f"free text ({token[1]!r} without field:) is not supported")
        name = token[1]
        if self.take("punct", "("):  # field:(a or b): and/or/not over values, only in parentheses
            values = self.or_expr(lambda: self.value(name))
            self.expect("punct", ")")
            return values
        return self.value(name)

    def value(self, name: str) -> dict[str, Any]:
        token = self.peek()
        if token is None or token[0] not in ("word", "quoted"):
            raise KqlError(f"expected a value for {name} at token {self.pos}: {token}")
        self.pos += 1
        kind, text = token
        field_type = self.fields.get(name)
        if field_type is None:
            query: list[dict[str, Any]] = []  # Kibana: a field the data view lacks matches nothing
        elif kind == "word" and text == "*":
            query = [{"exists": {"field": name}}]
        elif kind == "word" and ("*" in text or text.startswith(("<", ">"))):
            raise KqlError(f"wildcard or range value {text!r} is not supported")
        elif field_type in ("date", "nested"):
            raise KqlError(f"{field_type} field {name} is not supported")
        else:
            query = [{"match_phrase" if kind == "quoted" else "match": {name: text}}]
        return {"bool": {"should": query, "minimum_should_match": 1}}


def kql_to_dsl(query: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """The query DSL Kibana sends for a KQL query over a data view with ``fields`` (name -> type)."""
    return _Kql(query, fields).parse()


# ---------------------------------------------------------------- search requests


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    @classmethod
    def relative(cls, start: str, end: str, now: datetime | None = None) -> TimeRange:
        """A dashboard's ``timeFrom`` / ``timeTo`` (``now``, ``now-15m``), resolved as the browser does."""
        current = now or datetime.now(UTC)

        def resolve(expression: str) -> datetime:
            match = re.fullmatch(r"now(?:-(\d+)([smhd]))?", expression)
            if match is None:
                raise KqlError(f"time expression {expression!r} is not supported")
            amount, unit = match.groups()
            return current - timedelta(**{_UNITS[unit]: int(amount)}) if amount else current

        return cls(resolve(start), resolve(end))

    def filter(self, time_field: str) -> dict[str, Any]:
        return {
            "range": {
                time_field: {
                    "gte": self.start.isoformat(),
                    "lte": self.end.isoformat(),
                    "format": "strict_date_optional_time",
                }
            }
        }


def _search_source(obj: dict[str, Any]) -> dict[str, Any]:
    source: dict[str, Any] = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    return source


def _queries(
    obj: dict[str, Any], objects: Mapping[str, dict[str, Any]], fields: Mapping[str, str]
) -> list[Any]:
    """The KQL of an object and of the saved search it is built on (Kibana's search source parent)."""
    source = _search_source(obj)
    if source.get("filter"):
        raise KqlError(f"{obj['id']}: filters (pinned or not) are not supported")
    query = source.get("query", {"query": "", "language": "kuery"})
    if query.get("language") != "kuery":
        raise KqlError(f"{obj['id']}: query language {query.get('language')} is not supported")
    found = [kql_to_dsl(query["query"], fields)] if query["query"].strip() else []
    parent_ref = obj["attributes"].get("savedSearchRefName")
    if parent_ref is not None:
        (parent_id,) = [ref["id"] for ref in obj["references"] if ref["name"] == parent_ref]
        found = _queries(objects[parent_id], objects, fields) + found
    return found


def _data_view(obj: dict[str, Any], objects: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    source = _search_source(obj)
    if "indexRefName" in source:
        (view_id,) = [ref["id"] for ref in obj["references"] if ref["name"] == source["indexRefName"]]
        return objects[view_id]
    (parent_id,) = [
        ref["id"] for ref in obj["references"] if ref["name"] == obj["attributes"]["savedSearchRefName"]
    ]
    return _data_view(objects[parent_id], objects)


def _query(
    obj: dict[str, Any], objects: Mapping[str, dict[str, Any]], fields: Mapping[str, str], time: TimeRange
) -> tuple[str, dict[str, Any]]:
    view = _data_view(obj, objects)
    clauses = _queries(obj, objects, fields)
    time_field = view["attributes"].get("timeFieldName")
    if time_field:
        clauses.append(time.filter(time_field))
    return view["attributes"]["title"], {"bool": {"filter": clauses}}


def saved_search_request(
    search_id: str, objects: Mapping[str, dict[str, Any]], fields: Mapping[str, str], time: TimeRange
) -> tuple[str, dict[str, Any]]:
    """(index pattern, body) of what Discover sends when the saved search is opened."""
    obj = objects[search_id]
    pattern, query = _query(obj, objects, fields, time)
    sort = [{name: {"order": order}} for name, order in obj["attributes"].get("sort", [])]
    return pattern, {"query": query, "sort": sort, "size": 500, "track_total_hits": True}


_NICE_INTERVALS = [
    ("1s", 1), ("5s", 5), ("10s", 10), ("30s", 30), ("1m", 60), ("5m", 300), ("10m", 600),
    ("30m", 1800), ("1h", 3600), ("3h", 10800), ("12h", 43200), ("1d", 86400),
]  # fmt: skip


def _auto_interval(time: TimeRange) -> str:
    target = (time.end - time.start) / timedelta(seconds=1) / 50
    return min(_NICE_INTERVALS, key=lambda item: abs(item[1] - target))[0]


def _metric_dsl(agg: dict[str, Any]) -> dict[str, Any] | None:
    if agg["type"] == "count":
        return None
    if agg["type"] in ("avg", "max", "min", "sum"):
        return {agg["type"]: {"field": agg["params"]["field"]}}
    raise NotImplementedError(f"metric {agg['type']} is not supported")


def visualization_aggs(aggs: list[dict[str, Any]], time: TimeRange) -> dict[str, Any]:
    """``visState.aggs`` as the ``aggs`` of a search request."""
    enabled = [agg for agg in aggs if agg.get("enabled", True)]
    metrics = {agg["id"]: agg for agg in enabled if agg["schema"] == "metric"}
    buckets = [agg for agg in enabled if agg["schema"] != "metric"]
    inner: dict[str, Any] = {}
    for agg_id, agg in metrics.items():
        metric = _metric_dsl(agg)
        if metric is not None:
            inner[agg_id] = metric
    for agg in reversed(buckets):
        params = agg["params"]
        sub: dict[str, Any] = dict(inner)
        if agg["type"] == "terms":
            order_by = params["orderBy"]
            if metrics[order_by]["type"] == "count":
                order = {"_count": params["order"]}
            else:
                order = {order_by: params["order"]}
                sub.setdefault(order_by, _metric_dsl(metrics[order_by]))
            dsl: dict[str, Any] = {
                "terms": {"field": params["field"], "size": params["size"], "order": order}
            }
        elif agg["type"] == "date_histogram":
            interval = params["interval"]
            dsl = {
                "date_histogram": {
                    "field": params["field"],
                    "fixed_interval": _auto_interval(time) if interval == "auto" else interval,
                    "min_doc_count": params.get("min_doc_count", 1),
                    "time_zone": "UTC",
                }
            }
        else:
            raise NotImplementedError(f"bucket agg {agg['type']} is not supported")
        if sub:
            dsl["aggs"] = sub
        inner = {agg["id"]: dsl}
    return inner


def visualization_request(
    vis_id: str, objects: Mapping[str, dict[str, Any]], fields: Mapping[str, str], time: TimeRange
) -> tuple[str, dict[str, Any]]:
    """(index pattern, body) of what a dashboard panel sends for the visualization."""
    obj = objects[vis_id]
    pattern, query = _query(obj, objects, fields, time)
    state = json.loads(obj["attributes"]["visState"])
    return pattern, {"size": 0, "query": query, "aggs": visualization_aggs(state["aggs"], time)}


def rows(aggs: list[dict[str, Any]], response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table Kibana draws from the answer: one row per innermost bucket, keyed by agg id
    (bucket keys, the count as the count metric's id, metric values)."""
    enabled = [agg for agg in aggs if agg.get("enabled", True)]
    metrics = [agg for agg in enabled if agg["schema"] == "metric"]
    buckets = [agg for agg in enabled if agg["schema"] != "metric"]

    def walk(node: Mapping[str, Any], depth: int, row: dict[str, Any]) -> list[dict[str, Any]]:
        if depth == len(buckets):
            out = dict(row)
            for metric in metrics:
                out[metric["id"]] = (
                    node["doc_count"] if metric["type"] == "count" else node[metric["id"]]["value"]
                )
            return [out]
        agg = buckets[depth]
        found = []
        for bucket in node[agg["id"]]["buckets"]:
            key = bucket.get("key_as_string", bucket["key"])
            found.extend(walk(bucket, depth + 1, {**row, agg["id"]: key}))
        return found

    top = {"doc_count": response["hits"]["total"]["value"], **response["aggregations"]}
    return walk(top, 0, {})
