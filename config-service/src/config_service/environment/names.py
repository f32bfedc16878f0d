"""What an app, profile or label may look like in a URL (anything else is a 400)."""

from __future__ import annotations

import re

from chassis import ServiceError

__all__ = ["InvalidName", "check_app", "check_label", "check_profiles"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,199}$")


class InvalidName(ServiceError):
    status = 400
    title = "Invalid name"


def check_app(app: str) -> str:
    if not _NAME.match(app) or ".." in app:
        raise InvalidName("application names use letters, digits, '.', '_' and '-'")
    return app


def check_profiles(profiles: str) -> list[str]:
    names = [name.strip() for name in profiles.split(",")]
    if not names or any(not _NAME.match(name) or ".." in name for name in names):
        raise InvalidName("profiles are comma-separated names of letters, digits, '.', '_' and '-'")
    return names


def check_label(label: str | None) -> str | None:
    """``(_)`` in a URL label stands for ``/`` (Spring's convention)."""
    if label is None:
        return None
    label = label.replace("(_)", "/")
    if (
        not _LABEL.match(label)
        or ".." in label
        or "//" in label
        or label.endswith(("/", ".lock", "."))
        or "/." in label
    ):
        raise InvalidName("a label is a branch, tag or commit id (write '/' as '(_)')")
    return label
