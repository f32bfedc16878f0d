"""Opaque cursors for the app's infinite lists, over the page/size paging of the domain services.

A cursor carries the next page and the page size of the list it continues (so a later ``limit``
cannot shift the window and repeat or skip rows). It is not a secret, only opaque: anything this
API did not issue is a 400 problem+json.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from chassis import ServiceError

__all__ = ["BadCursor", "Window", "next_cursor", "window"]

_PREFIX = "v1"
MAX_PAGE = 10_000


class BadCursor(ServiceError):
    status = 400
    title = "Bad cursor"

    def __init__(self) -> None:
        super().__init__("The cursor is not one this API issued; start again without a cursor.")


@dataclass(frozen=True)
class Window:
    page: int
    size: int


def window(cursor: str | None, limit: int, max_size: int) -> Window:
    """Where a list continues: the first page of ``limit`` rows, or what ``cursor`` says."""
    if cursor is None:
        return Window(1, limit)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        prefix, page, size = raw.split(":")
        found = Window(int(page), int(size))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadCursor() from None
    if prefix != _PREFIX or not 1 <= found.page <= MAX_PAGE or not 1 <= found.size <= max_size:
        raise BadCursor()
    return found


def next_cursor(current: Window, total: int) -> str | None:
    """The cursor of the page after ``current``, or ``None`` at the end of the list."""
    if current.page * current.size >= total or current.page >= MAX_PAGE:
        return None
    raw = f"{_PREFIX}:{current.page + 1}:{current.size}"
    return base64.urlsafe_b64encode(raw.encode("ascii")).decode("ascii").rstrip("=")
