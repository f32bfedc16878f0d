"""Opaque cursors for the app's infinite lists.

A cursor carries where the list continues (the last product id for catalog's keyset paging, or the
next page number for orders) and the page size of the list it continues, so a later ``limit``
cannot shift the window and repeat or skip rows. It is opaque, not secret: anything this API did
not issue is a 400 problem+json.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from chassis import ServiceError

__all__ = ["BadCursor", "Window", "cursor_for", "window"]

_VERSION = "v1"
_POSITION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class BadCursor(ServiceError):
    status = 400
    title = "Bad cursor"

    def __init__(self) -> None:
        super().__init__("The cursor is not one this API issued; start again without a cursor.")


@dataclass(frozen=True)
class Window:
    after: str | None  # where the list continues; None: from the start
    size: int


def window(cursor: str | None, limit: int, max_size: int) -> Window:
    """Where a list continues: its start with ``limit`` rows, or what ``cursor`` says."""
    if cursor is None:
        return Window(None, limit)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        version, after, size = raw.split("|")
        found = Window(after, int(size))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadCursor() from None
    if version != _VERSION or not _POSITION.match(after) or not 1 <= found.size <= max_size:
        raise BadCursor()
    return found


def cursor_for(after: str | None, size: int) -> str | None:
    """The cursor of the rows after ``after``, or ``None`` at the end of the list."""
    if after is None:
        return None
    raw = f"{_VERSION}|{after}|{size}"
    return base64.urlsafe_b64encode(raw.encode("ascii")).decode("ascii").rstrip("=")
