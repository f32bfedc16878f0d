"""Fan-out of server-sent-event frames to every connected page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Hub", "sse_frame"]

# A page this many frames behind is disconnected; its EventSource reconnects and starts fresh.
QUEUE_FRAMES = 30


def sse_frame(event: str, data: Any) -> bytes:
    """One SSE event; ``data`` as compact JSON (which never contains a newline)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Hub:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[bytes | None]] = set()

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[bytes | None]]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUE_FRAMES)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    def publish(self, frame: bytes) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(frame)
            except asyncio.QueueFull:
                # A slow page: drop what it has not read and tell it to go (None ends its stream).
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)
                self._queues.discard(queue)

    def close(self) -> None:
        """Shutdown: end every stream so the server can stop."""
        for queue in list(self._queues):
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)
        self._queues.clear()
