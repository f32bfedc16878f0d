"""Process-wide logging: one JSON shape for stdout and Logstash, never blocking the event loop.

Every record is stamped (service, env, trace_id, span_id, request_id, user) in the calling
thread, then handed to one bounded buffer per sink. A background thread per sink writes what
its buffer holds in one write: every 0.1 s, at once after a warning or an error. A full buffer or
an unreachable Logstash drops the record and counts it: a logging outage costs log lines, never
request latency.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from logstash import TCPLogstashHandler
from logstash.formatter import LogstashFormatterVersion1
from opentelemetry import trace

from chassis.context import request_id_var, user_var
from chassis.settings import ServiceSettings

__all__ = ["SinkStats", "configure_logging", "log_stats", "set_log_level", "shutdown_logging"]

T = TypeVar("T")

# Loggers whose own output we replace: uvicorn's access log (the chassis writes one per request)
# and httpx's line per outbound request (the span says it, and full URLs may carry secrets).
_QUIET = {"uvicorn.access": logging.WARNING, "httpx": logging.WARNING, "httpcore": logging.WARNING}


@dataclass
class SinkStats:
    """Counters of one sink; read by /ops/telemetry and the tests."""

    name: str
    written: int = 0
    dropped: int = 0  # buffer full, or the sink could not take the record
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


FLUSH_S = 0.1  # an INFO line reaches its sinks within this; a warning or an error at once
_BATCH = 256  # lines per write at most; this many waiting also wake the writer
_CHUNK = 32  # records rendered between two chances for the event loop to take the GIL


def _prepare(record: logging.LogRecord) -> logging.LogRecord:
    """A copy to hand to another thread: message and traceback rendered now (args may change
    later), the fields kept (the sink's formatter builds the JSON from them)."""
    prepared = logging.makeLogRecord(record.__dict__)
    prepared.msg, prepared.args = record.getMessage(), None
    if record.exc_info:
        prepared.stack_trace = "".join(traceback.format_exception(*record.exc_info))
    prepared.exc_info, prepared.exc_text = None, None
    prepared.__dict__.pop("color_message", None)  # uvicorn's ANSI copy of the message
    return prepared


def _render(
    batch: list[logging.LogRecord], render: Callable[[logging.LogRecord], T], stats: SinkStats
) -> list[T]:
    """Each record rendered; one that cannot be is lost and counted, not fatal. Every ``_CHUNK``
    records the GIL is let go: 256 lines take about 4 ms, too long a stall for the event loop."""
    rendered = []
    for n, record in enumerate(batch, 1):
        try:
            rendered.append(render(record))
        except Exception:
            stats.add(dropped=1)
        if n % _CHUNK == 0:
            time.sleep(0)
    return rendered


class _Sink(threading.Thread):
    """One destination: a bounded buffer the logging threads append to without waiting, and a
    thread that writes what it holds in one go (one write, one send): every ``FLUSH_S``, at once
    for a warning or an error (the last lines before a crash matter most), or as soon as
    ``_BATCH`` wait. Waking that thread for each record, and writing each line alone, cost a
    catalog request 0.2 ms of its 1 ms; this way, 0.1 ms (access line and all, wrk at 16
    connections). On a hard kill (SIGKILL, out of memory) up to ``FLUSH_S`` of INFO lines are lost;
    a normal exit writes them (``shutdown_logging``, at exit too)."""

    def __init__(
        self, stats: SinkStats, capacity: int, write: Callable[[list[logging.LogRecord]], None]
    ) -> None:
        super().__init__(name=f"log-{stats.name}", daemon=True)
        self.stats = stats
        self._capacity, self._write = capacity, write
        self._wake_at = max(1, min(_BATCH, capacity // 2))  # a small buffer must not fill unwritten
        self._records: deque[logging.LogRecord] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._abandoned = False  # stop() gave up waiting: the sink is wedged

    def offer(self, record: logging.LogRecord) -> None:
        if self._stopping or len(self._records) >= self._capacity:  # never wait: drop the newest
            self.stats.add(dropped=1)
            return
        self._records.append(record)
        if record.levelno >= logging.WARNING or len(self._records) == self._wake_at:
            self._wake.set()

    def run(self) -> None:
        while True:
            self._wake.wait(FLUSH_S)
            self._wake.clear()
            stopping = self._stopping  # read before draining: what was offered before stop() goes out
            while self._records and not self._abandoned:
                batch = [self._records.popleft() for _ in range(min(len(self._records), _BATCH))]
                try:
                    self._write(batch)  # counts what it writes and what it loses
                except Exception:  # a sink must never kill its thread
                    self.stats.add(dropped=len(batch))
            if stopping or self._abandoned:
                return

    def stop(self, timeout_s: float = 10) -> None:
        """Write what is buffered, then end the thread; a sink still stuck after ``timeout_s``
        (a wedged Logstash: 1 s per batch) is given up, the rest counted as dropped."""
        self._stopping = True
        self._wake.set()
        self.join(timeout_s)
        if self.is_alive():
            self._abandoned = True
            left = len(self._records)
            self._records.clear()
            self.stats.add(dropped=left)


class _Fanout(logging.Handler):
    """On the root logger: stamps and renders a record once, in the thread that logs, and offers
    it to every sink."""

    def __init__(self, sinks: list[_Sink]) -> None:
        super().__init__()
        self.sinks = sinks

    def handle(self, record: logging.LogRecord) -> bool:  # no handler lock: offer() needs none
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            prepared = _prepare(record)
        except Exception:  # bad arguments for the message: logging's own report on stderr
            self.handleError(record)
            return
        for sink in self.sinks:
            sink.offer(prepared)


class _Formatter(LogstashFormatterVersion1):  # type: ignore[misc]
    """stdout gets exactly the JSON that goes to Logstash (one shape to learn and to index)."""

    def __init__(self) -> None:
        super().__init__(message_type="msa", tags=[], fqdn=False)

    def format(self, record: logging.LogRecord) -> str:
        raw: bytes = super().format(record)
        return raw.decode()


def _stdout_writer(stats: SinkStats) -> Callable[[list[logging.LogRecord]], None]:
    stream, formatter = sys.stdout, _Formatter()

    def write(batch: list[logging.LogRecord]) -> None:
        lines = _render(batch, formatter.format, stats)
        if not lines:
            return
        try:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        except Exception:  # a closed or broken stdout
            stats.add(dropped=len(lines))
            return
        stats.add(written=len(lines))

    return write


class _LogstashHandler(TCPLogstashHandler):  # type: ignore[misc]
    """python-logstash's TCP handler (one JSON per line, version 1) that sends a batch at once and
    counts what it loses.

    SocketHandler drops what it cannot send when it cannot connect and backs off before the next
    try (1 s doubling to 30 s), so a Logstash outage costs no time per record.
    """

    def __init__(self, host: str, port: int, stats: SinkStats) -> None:
        super().__init__(host, port, version=1, message_type="msa")
        self.stats = stats

    def send_batch(self, batch: list[logging.LogRecord]) -> None:
        lines = _render(batch, self.makePickle, self.stats)
        if not lines:
            return
        with self.lock:  # close() waits for a send under way
            self.send(b"".join(lines))
            sent = self.sock is not None  # SocketHandler.send closes and forgets a socket that failed
        # "written": handed to the socket (a send cut off by its timeout counts the batch as lost)
        self.stats.add(written=len(lines)) if sent else self.stats.add(dropped=len(lines))

    def handleError(self, record: logging.LogRecord) -> None:
        self.stats.add(dropped=1)


@dataclass
class _Runtime:
    front: _Fanout
    sinks: list[_Sink]
    logstash: _LogstashHandler | None


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
        stdout_stats = SinkStats("stdout")
        sinks = [_Sink(stdout_stats, settings.log_queue_size, _stdout_writer(stdout_stats))]
        logstash = None
        if settings.logstash_host:
            ls_stats = SinkStats("logstash")
            logstash = _LogstashHandler(settings.logstash_host, settings.logstash_port, ls_stats)
            sinks.append(_Sink(ls_stats, settings.log_queue_size, logstash.send_batch))
        front = _Fanout(sinks)
        front.addFilter(_ContextFilter(settings.service_name, settings.env))
        root.addHandler(front)
        for sink in sinks:
            sink.start()
        _runtime = _Runtime(front, sinks, logstash)
        _stats = {sink.stats.name: sink.stats for sink in sinks}
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
    """Write what the sinks hold (bounded by their capacity) and close them."""
    with _lock:
        _shutdown_locked()


# A process that ends (sys.exit, an error at start-up) writes what its sinks still hold first.
atexit.register(shutdown_logging)


def _shutdown_locked() -> None:
    global _runtime
    if _runtime is None:
        return
    logging.getLogger().removeHandler(_runtime.front)
    for sink in _runtime.sinks:
        sink.stop()
    if _runtime.logstash is not None:
        _runtime.logstash.close()
    _runtime = None
