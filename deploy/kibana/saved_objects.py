"""Source of saved-objects.ndjson (the Kibana objects kibana-setup imports). Edit here, then run

    python deploy/kibana/saved_objects.py

tests/test_kibana_saved_objects.py fails when the committed NDJSON differs from this output.
Kibana stores several attributes as JSON *strings* (fieldFormatMap, visState, searchSourceJSON,
panelsJSON, optionsJSON); writing them here as dicts and serialising once avoids hand-escaping.
Migration-version fields (typeMigrationVersion, migrationVersion) are omitted, and that does NOT make
Kibana migrate the objects: 8.15's document migrator takes an object without them as already
current, runs no type migration on import and stamps the latest version on it
(core-saved-objects-migration-server-internal, document_migrator/pipelines/upgrade_pipeline.ts).
So every object here must be written in the shape Kibana 8.15 stores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "saved-objects.ndjson"

DATA_VIEW_ID = "msa-logs"
INDEX_PATTERN = "msa-logs-*"
# The trace page of Zipkin as the user's browser reaches it (published port 9411).
ZIPKIN_TRACE_URL = "http://localhost:9411/zipkin/traces/{{value}}"
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


def _elastic_version() -> str:
    for line in (HERE.parent.parent / ".env").read_text().splitlines():
        if line.startswith("ELASTIC_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError(".env has no ELASTIC_VERSION")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _search_source(query: str = "", *, with_index: bool) -> dict[str, str]:
    source: dict[str, Any] = {"query": {"query": query, "language": "kuery"}, "filter": []}
    if with_index:
        source["indexRefName"] = INDEX_REF
    return {"searchSourceJSON": _dumps(source)}


def data_view() -> dict[str, Any]:
    url_format = {"id": "url", "params": {"urlTemplate": ZIPKIN_TRACE_URL, "labelTemplate": "{{value}}"}}
    return {
        "type": "index-pattern",
        "id": DATA_VIEW_ID,
        "attributes": {
            "title": INDEX_PATTERN,
            "name": "msa-platform logs",
            "timeFieldName": "@timestamp",
            "fieldFormatMap": _dumps({"trace_id": url_format}),
        },
        "references": [],
    }


def saved_search(object_id: str, title: str, query: str, columns: list[str]) -> dict[str, Any]:
    return {
        "type": "search",
        "id": object_id,
        "attributes": {
            "title": title,
            "description": "",
            "columns": columns,
            "sort": [["@timestamp", "desc"]],
            "kibanaSavedObjectMeta": _search_source(query, with_index=True),
        },
        "references": [{"name": INDEX_REF, "type": "index-pattern", "id": DATA_VIEW_ID}],
    }


def _xy_params(chart: str, mode: str) -> dict[str, Any]:
    return {
        "type": chart,
        "grid": {"categoryLines": False},
        "categoryAxes": [
            {
                "id": "CategoryAxis-1",
                "type": "category",
                "position": "bottom",
                "show": True,
                "style": {},
                "scale": {"type": "linear"},
                "labels": {"show": True, "filter": True, "truncate": 100},
                "title": {},
            }
        ],
        "valueAxes": [
            {
                "id": "ValueAxis-1",
                "name": "LeftAxis-1",
                "type": "value",
                "position": "left",
                "show": True,
                "style": {},
                "scale": {"type": "linear", "mode": "normal"},
                "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                "title": {"text": "Count"},
            }
        ],
        "seriesParams": [
            {
                "show": True,
                "type": chart,
                "mode": mode,
                "data": {"label": "Count", "id": "1"},
                "valueAxis": "ValueAxis-1",
                "drawLinesBetweenPoints": True,
                "lineWidth": 2,
                "showCircles": True,
            }
        ],
        "addTooltip": True,
        "addLegend": True,
        "legendPosition": "right",
        "times": [],
        "addTimeMarker": False,
    }


def _table_params() -> dict[str, Any]:
    return {
        "perPage": 10,
        "showPartialRows": False,
        "showMetricsAtAllLevels": False,
        "showTotal": False,
        "totalFunc": "sum",
        "percentageCol": "",
    }


COUNT = {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}}
OVER_TIME = {
    "id": "2",
    "enabled": True,
    "type": "date_histogram",
    "schema": "segment",
    "params": {"field": "@timestamp", "interval": "auto", "min_doc_count": 1, "extended_bounds": {}},
}
BY_SERVICE = {
    "id": "3",
    "enabled": True,
    "type": "terms",
    "schema": "group",
    "params": {"field": "service", "size": 10, "order": "desc", "orderBy": "1"},
}


def visualization(
    object_id: str,
    title: str,
    vis_type: str,
    params: dict[str, Any],
    aggs: list[dict[str, Any]],
    *,
    search_id: str | None = None,
) -> dict[str, Any]:
    """A visualization over the data view, or over a saved search (whose query it inherits)."""
    vis_state = {"title": title, "type": vis_type, "params": params, "aggs": aggs}
    attributes: dict[str, Any] = {
        "title": title,
        "description": "",
        "visState": _dumps(vis_state),
        "uiStateJSON": "{}",
        "kibanaSavedObjectMeta": _search_source(with_index=search_id is None),
    }
    if search_id is None:
        references = [{"name": INDEX_REF, "type": "index-pattern", "id": DATA_VIEW_ID}]
    else:
        attributes["savedSearchRefName"] = "search_0"
        references = [{"name": "search_0", "type": "search", "id": search_id}]
    return {"type": "visualization", "id": object_id, "attributes": attributes, "references": references}


def dashboard(object_id: str, title: str, panel_ids: list[str], version: str) -> dict[str, Any]:
    panels, references = [], []
    for index, vis_id in enumerate(panel_ids):
        ref = f"panel_{index}"
        panels.append(
            {
                "version": version,
                "type": "visualization",
                "gridData": {"x": 24 * (index % 2), "y": 15 * (index // 2), "w": 24, "h": 15, "i": str(index)},
                "panelIndex": str(index),
                "embeddableConfig": {},
                "panelRefName": ref,
            }
        )
        references.append({"name": ref, "type": "visualization", "id": vis_id})
    return {
        "type": "dashboard",
        "id": object_id,
        "attributes": {
            "title": title,
            "description": "Log volume per service, errors over time, top error messages, slowest routes.",
            "panelsJSON": _dumps(panels),
            "optionsJSON": _dumps({"useMargins": True, "syncColors": False, "hidePanelTitles": False}),
            "timeRestore": True,
            "timeFrom": "now-1h",
            "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 10000},
            "kibanaSavedObjectMeta": _search_source(with_index=False),
        },
        "references": references,
    }


def saved_objects() -> list[dict[str, Any]]:
    errors = saved_search(
        "msa-search-errors",
        "Errors",
        "level:(ERROR or CRITICAL)",
        ["service", "level", "logger_name", "message", "trace_id"],
    )
    requests = saved_search(
        "msa-search-requests",
        "Requests",
        "http.status_code:*",
        ["service", "http.method", "http.route", "http.status_code", "http.duration_ms", "trace_id"],
    )
    volume = visualization(
        "msa-vis-log-volume",
        "Log volume per service",
        "histogram",
        _xy_params("histogram", "stacked"),
        [COUNT, OVER_TIME, BY_SERVICE],
    )
    errors_over_time = visualization(
        "msa-vis-errors-over-time",
        "Errors over time",
        "line",
        _xy_params("line", "normal"),
        [COUNT, OVER_TIME, BY_SERVICE],
        search_id=errors["id"],
    )
    top_errors = visualization(
        "msa-vis-top-error-messages",
        "Top error messages",
        "table",
        _table_params(),
        [
            COUNT,
            {
                "id": "2",
                "enabled": True,
                "type": "terms",
                "schema": "bucket",
                "params": {"field": "message.keyword", "size": 10, "order": "desc", "orderBy": "1"},
            },
            {
                "id": "3",
                "enabled": True,
                "type": "terms",
                "schema": "bucket",
                "params": {"field": "service", "size": 5, "order": "desc", "orderBy": "1"},
            },
        ],
        search_id=errors["id"],
    )
    slowest = visualization(
        "msa-vis-slowest-routes",
        "Slowest routes",
        "table",
        _table_params(),
        [
            COUNT,
            {"id": "2", "enabled": True, "type": "avg", "schema": "metric", "params": {"field": "http.duration_ms"}},
            {"id": "3", "enabled": True, "type": "max", "schema": "metric", "params": {"field": "http.duration_ms"}},
            {
                "id": "4",
                "enabled": True,
                "type": "terms",
                "schema": "bucket",
                "params": {"field": "service", "size": 10, "order": "desc", "orderBy": "2"},
            },
            {
                "id": "5",
                "enabled": True,
                "type": "terms",
                "schema": "bucket",
                "params": {"field": "http.route", "size": 10, "order": "desc", "orderBy": "2"},
            },
        ],
        search_id=requests["id"],
    )
    visualizations = [volume, errors_over_time, top_errors, slowest]
    board = dashboard(
        "msa-dashboard-logs", "msa-platform logs", [v["id"] for v in visualizations], _elastic_version()
    )
    return [data_view(), errors, requests, *visualizations, board]


def render() -> str:
    return "".join(json.dumps(obj, sort_keys=True) + "\n" for obj in saved_objects())


if __name__ == "__main__":
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}")
