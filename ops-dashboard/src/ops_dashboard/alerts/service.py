"""An error log event (as the Logstash ``index`` pipeline publishes it) turned into an alert row."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["to_alert", "trace_url"]

_TRACE_ID = re.compile(r"^(?:[0-9a-f]{16}|[0-9a-f]{32})$")
_MAX_MESSAGE = 2_000
_MAX_STACK = 8_000


def trace_url(zipkin_ui_url: str, trace_id: Any) -> str | None:
    """The Zipkin UI page of a trace; only for a well-formed id (it becomes a link on the page)."""
    if isinstance(trace_id, str) and _TRACE_ID.match(trace_id.lower()):
        return f"{zipkin_ui_url}/zipkin/traces/{trace_id.lower()}"
    return None


def to_alert(raw: bytes | str, *, seq: int, zipkin_ui_url: str) -> dict[str, Any]:
    """Never fails: an event that is not a JSON object still shows, as its raw text."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        event = json.loads(text)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        event = {"message": text, "level": "UNKNOWN"}
    trace_id = _text(event.get("trace_id"))
    return {
        "id": seq,
        "timestamp": _text(event.get("@timestamp")),
        "level": (_text(event.get("level")) or "ERROR").upper(),
        "service": _text(event.get("service")),
        "env": _text(event.get("env")),
        "logger": _text(event.get("logger_name")),
        "message": (_text(event.get("message")) or "")[:_MAX_MESSAGE],
        "trace_id": trace_id,
        "span_id": _text(event.get("span_id")),
        "request_id": _text(event.get("request_id")),
        "stack_trace": (_text(event.get("stack_trace")) or "")[:_MAX_STACK] or None,
        "trace_url": trace_url(zipkin_ui_url, trace_id),
    }


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value)
