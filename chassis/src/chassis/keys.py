"""Spring's flat dotted keys and nested values, both ways.

Config-service serves ``{"breaker.fail-max": 3, "users[0].name": "alice"}``; settings models want
``{"breaker": {"fail_max": 3}, "users": [{"name": "alice"}]}``. One conversion, used by the
config-service, the config client and the remote settings source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["flatten", "unflatten"]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1, {"c": 2}]}}`` -> ``{"a.b[0]": 1, "a.b[1].c": 2}`` (null -> ``""`` as Spring)."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        if not value and prefix:
            out[prefix] = ""
        for key, child in value.items():
            key = str(key)
            out.update(flatten(child, f"{prefix}.{key}" if prefix else key))
    elif isinstance(value, list | tuple):
        if not value and prefix:
            out[prefix] = ""
        for index, child in enumerate(value):
            out.update(flatten(child, f"{prefix}[{index}]"))
    else:
        out[prefix] = "" if value is None else value
    return out


_SEGMENT = re.compile(r"\[([^\]]*)\]|\.?([^.\[\]]+)")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _segments(key: str) -> list[str | int]:
    parts: list[str | int] = []
    for bracket, plain in _SEGMENT.findall(key):
        if plain:
            # Spring relaxed binding: fail-max == fail_max (map keys such as "/products" stay as they are).
            parts.append(plain.replace("-", "_") if _IDENTIFIER.match(plain) else plain)
        elif bracket.isdigit():
            parts.append(int(bracket))
        else:
            parts.append(bracket)
    return parts


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``flatten``: list indices become lists (in index order), the rest nested dicts."""
    root: dict[Any, Any] = {}
    for key, value in flat.items():
        parts = _segments(key)
        if not parts:
            continue
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if not isinstance(node.get(parts[-1]), dict):  # a scalar never hides a subtree
            node[parts[-1]] = value
    result = _lists(root)
    return result if isinstance(result, dict) else {}


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(isinstance(key, int) for key in node):
        return [_lists(node[key]) for key in sorted(node)]
    return {str(key): _lists(child) for key, child in node.items()}
