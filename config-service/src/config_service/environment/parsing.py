"""Config files -> Spring's flat property maps (``a.b[0].c``), and the merged renderings back."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from chassis.keys import flatten

__all__ = ["EXTENSIONS", "ParseError", "parse_file", "parse_properties", "render_properties", "render_yaml"]

# Order inside one location: .properties wins over YAML (Spring Boot's loader order), JSON last.
EXTENSIONS = ("properties", "yml", "yaml", "json")


class ParseError(ValueError):
    """A file that is not valid for its extension; the message never quotes values."""


def parse_file(path: str, data: bytes) -> dict[str, Any]:
    ext = path.rsplit(".", 1)[-1]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"not UTF-8 (byte {exc.start})") from exc
    if ext == "properties":
        return parse_properties(text)
    if ext in ("yml", "yaml"):
        try:
            tree = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise ParseError(
                f"invalid YAML{where}: {getattr(exc, 'problem', None) or type(exc).__name__}"
            ) from exc
    elif ext == "json":
        try:
            tree = json.loads(text)
        except ValueError as exc:
            raise ParseError(f"invalid JSON: {exc}") from exc
    else:
        raise ParseError(f"unsupported extension .{ext}")
    if tree is None:
        return {}
    if not isinstance(tree, Mapping):
        raise ParseError("the top level must be a mapping")
    return {key: _scalar(value) for key, value in flatten(tree).items()}


def _scalar(value: Any) -> Any:
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


# -- java.util.Properties ------------------------------------------------------------------------

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6]):
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.lstrip()
        if not current and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:  # an odd number of backslashes continues the line
            current += line[:-1]
            continue
        lines.append(current + line)
        current = ""
    if current:
        lines.append(current)
    return lines


def parse_properties(text: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for line in _logical_lines(text):
        i, key_end = 0, len(line)
        while i < len(line):
            if line[i] == "\\":
                i += 2
                continue
            if line[i] in "=: \t\f":
                key_end = i
                break
            i += 1
        rest = line[key_end:].lstrip(" \t\f")
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(" \t\f")
        result[_unescape(line[:key_end])] = _unescape(rest)
    return result


def _escape(text: str, *, key: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    if key:
        text = re.sub(r"([=: #!])", r"\\\1", text)
    elif text.startswith(" "):
        text = "\\" + text
    return text


def property_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_properties(flat: Mapping[str, Any]) -> str:
    return "".join(
        f"{_escape(key, key=True)}: {_escape(property_text(value), key=False)}\n"
        for key, value in sorted(flat.items())
    )


def render_yaml(tree: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(tree), default_flow_style=False, sort_keys=False, allow_unicode=True)
