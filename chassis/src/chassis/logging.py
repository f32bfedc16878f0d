"""Process-wide logging: one JSON shape for stdout and Logstash, never blocking the event loop.

Every record is stamped (service, env, trace_id, span_id, request_id, user) in the calling
thread, then handed to one bounded queue per sink. A background thread per sink writes it
out. A full queue or an unreachable Logstash drops the record and counts it: a logging
outage costs log lines, never request latency.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import traceback
from dataclasses import dataclass, field
from logging.handlers import QueueHandler, QueueListener
from typing import Any

from logstash import TCPLogstashHandler
from logstash.formatter import LogstashFormatterVersion1
from opentelemetry import trace

from chassis.context import request_id_var, user_var
from chassis.settings import ServiceSettings

__all__ = ["SinkStats", "configure_logging", "log_stats", "set_log_level", "shutdown_logging"]

# Loggers whose own output we replace: uvicorn's access log (the chassis writes one per request)
# and httpx's line per outbound request (the span says it, and full URLs may carry secrets).
_QUIET = {"uvicorn.access": logging.WARNING, "httpx": logging.WARNING, "httpcore": logging.WARNING}


@dataclass
class SinkStats:
    """Counters of one sink; read by /ops/telemetry and the tests."""

    name: str
    written: int = 0
    dropped: int = 0  # queue full, or the sink could not take the record
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, written: int = 0, dropped: int = 0) -> None:
        with self._lock:
            self.written += written
            self.dropped += dropped

    def as_dict(self) -> dict[str, int]:
        return {"written": self.written, "dropped": self.dropped}


class _ContextFilter(logging.Filter):
    """Adds the fields every log event carries (ARCHITECTURE.md, "Logs and traces") in the
    thread that logs, where the span and request are known."""

    def __init__(self, service: str, env: str) -> None:
        super().__init__()
        self.service, self.env = service, env

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.env = self.env
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            record.trace_id = trace.format_trace_id(ctx.trace_id)
            record.span_id = trace.format_span_id(ctx.span_id)
        else:
            record.trace_id = record.span_id = None
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if not hasattr(record, "user"):
            record.user = user_var.get()
        return True


class _BoundedQueueHandler(QueueHandler):
    """Never waits: a full queue drops the record and counts it."""

    def __init__(self, q: queue.Queue[logging.LogRecord], stats: SinkStats) -> None:
        super().__init__(q)
        self.stats = stats

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # Render message and traceback now (args may change later) but keep the record's
        # fields: the sink's formatter builds the JSON from them.
        prepared = logging.makeLogRecord(record.__dict__)
        prepared.msg, prepared.args = record.getMessage(), None
        if record.exc_info:
            prepared.stack_trace = "".join(traceback.format_exception(*record.exc_info))
        prepared.exc_info, prepared.exc_text = None, None
        prepared.__dict__.pop("color_message", None)  # uvicorn's ANSI copy of the message
        return prepared

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.stats.add(dropped=1)


class _JsonStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stdout, in exactly the JSON that goes to Logstash (one shape to learn and to index)."""

    def __init__(self, stats: SinkStats) -> None:
        super().__init__(sys.stdout)
        self.stats = stats
        self.setFormatter(_Formatter())

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        self.stats.add(written=1)


class _Formatter(LogstashFormatterVersion1):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(message_type="msa", tags=[], fqdn=False)

    def format(self, record: logging.LogRecord) -> str:
        raw: bytes = super().format(record)
        return raw.decode()


class _LogstashHandler(TCPLogstashHandler):  # type: ignore[misc]
    """python-logstash's TCP handler (one JSON per line, version 1) that counts what it loses.

    SocketHandler drops a record when it cannot connect and backs off before the next try
    (1 s doubling to 30 s), so a Logstash outage costs no time per record.
    """

    def __init__(self, host: str, port: int, stats: SinkStats) -> None:
        super().__init__(host, port, version=1, message_type="msa")
        self.stats = stats

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.send(self.makePickle(record))
        except Exception:  # a record that cannot be serialised is lost, not fatal
            self.stats.add(dropped=1)
            return
        # SocketHandler.send closes and forgets the socket when sending failed.
        self.stats.add(written=1) if self.sock is not None else self.stats.add(dropped=1)

    def handleError(self, record: logging.LogRecord) -> None:
        self.stats.add(dropped=1)


@dataclass
class _Runtime:
    listeners: list[QueueListener]
    handlers: list[logging.Handler]


_runtime: _Runtime | None = None
_stats: dict[str, SinkStats] = {}  # kept after shutdown, so the last counts stay readable
_lock = threading.Lock()


def configure_logging(settings: ServiceSettings) -> None:
    """Configure the root logger once per process (again replaces the previous setup)."""
    global _runtime, _stats
    with _lock:
        _shutdown_locked()
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        context = _ContextFilter(settings.service_name, settings.env)
        sinks: list[tuple[SinkStats, logging.Handler]] = []
        stdout_stats = SinkStats("stdout")
        sinks.append((stdout_stats, _JsonStreamHandler(stdout_stats)))
        if settings.logstash_host:
            ls_stats = SinkStats("logstash")
            sinks.append(
                (ls_stats, _LogstashHandler(settings.logstash_host, settings.logstash_port, ls_stats))
            )
        listeners, handlers, stats = [], [], {}
        for sink_stats, sink in sinks:
            q: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=settings.log_queue_size)
            front = _BoundedQueueHandler(q, sink_stats)
            front.addFilter(context)
            root.addHandler(front)
            listener = QueueListener(q, sink, respect_handler_level=False)
            listener.start()
            listeners.append(listener)
            handlers.extend([front, sink])
            stats[sink_stats.name] = sink_stats
        _runtime = _Runtime(listeners, handlers)
        _stats = stats
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
        for name, level in _QUIET.items():
            logging.getLogger(name).setLevel(level)
    set_log_level(settings.log_level)


def set_log_level(level: str) -> None:
    """Applied at start and again when a config refresh changes ``log_level``."""
    logging.getLogger().setLevel(level.upper())


def log_stats() -> dict[str, dict[str, Any]]:
    """Written and dropped records per sink since logging was last configured."""
    return {name: s.as_dict() for name, s in _stats.items()}


def shutdown_logging() -> None:
    """Flush the queues (bounded by what they hold) and close the sinks."""
    with _lock:
        _shutdown_locked()


def _shutdown_locked() -> None:
    global _runtime
    if _runtime is None:
        return
    root = logging.getLogger()
    for listener in _runtime.listeners:
        listener.stop()
    for handler in _runtime.handlers:
        root.removeHandler(handler)
        handler.close()
    _runtime = None
