"""Which paths the chassis' middlewares leave alone, and prefix matching on whole segments.

Health probes, operator routes and the API documents are the platform's own machinery: no fault is
injected into them, and no deadline, rate limit or load shedding applies to them. An overloaded or
misconfigured process must still answer its probes, and an operator must still reach it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["EXEMPT_PREFIXES", "exempt", "matcher", "under_prefix"]

EXEMPT_PREFIXES = ("/health", "/ops", "/docs", "/openapi.json", "/redoc")
_EXEMPT = frozenset(EXEMPT_PREFIXES)
_EXEMPT_UNDER = tuple(prefix + "/" for prefix in EXEMPT_PREFIXES)


def exempt(path: str) -> bool:
    """A health, ops or docs route, or one below it (checked on every request: no loop)."""
    return path in _EXEMPT or path.startswith(_EXEMPT_UNDER)


def under_prefix(path: str, prefix: str) -> bool:
    """``path`` is ``prefix`` or below it, matched on whole segments (``/auth`` covers ``/auth/me``,
    not ``/authority``)."""
    prefix = prefix.rstrip("/") or "/"
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def matcher(paths: Iterable[str]) -> Callable[[str], bool]:
    """A test for the paths ``paths`` names: ``/x`` that path alone, ``/x/*`` every path below
    ``/x/`` (as ``create_app(untraced_paths=...)`` takes them)."""
    named = tuple(paths)
    alone = frozenset(path for path in named if not path.endswith("/*"))
    below = tuple(path.removesuffix("*") for path in named if path.endswith("/*"))
    return lambda path: path in alone or path.startswith(below)
