"""Log records caught in-process, for tests that read what a service logged."""

from __future__ import annotations

import json
import logging

__all__ = ["Collect"]


class Collect(logging.Handler):
    """Keeps every record at ``level`` or above: add it to a logger, read ``records``, remove it."""

    def __init__(self, level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        """Each record's message and all its fields, one line each (to search for what must not be there)."""
        return "\n".join(
            r.getMessage()
            + " "
            + json.dumps({k: v for k, v in r.__dict__.items() if k != "args"}, default=str)
            for r in self.records
        )
