"""Logging never blocks callers, counts what it loses, and ships the fields every event carries to Logstash."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi import APIRouter

from chassis import ServiceSettings, create_app
from chassis.context import user_var
from chassis.logging import configure_logging, log_stats, shutdown_logging
from chassis.testing import running_app
from msa_cli.devstack import free_port
from msa_testing.polling import wait_until

N = 10_000


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    shutdown_logging()


def _settings(port: int, **extra: object) -> ServiceSettings:
    return ServiceSettings(
        service_name="log-test",
        env="test",
        logstash_host="127.0.0.1",
        logstash_port=port,
        zipkin_endpoint=None,
        **extra,  # type: ignore[arg-type]
    )


def _log_many(logger: logging.Logger, n: int, payload: str = "") -> threading.Thread:
    def run() -> None:
        for i in range(n):
            logger.info("record %d %s", i, payload)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_closed_logstash_port_costs_records_not_time(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(_settings(free_port()))  # nothing listens there
    caller = _log_many(logging.getLogger("load"), N)
    caller.join(60)
    assert not caller.is_alive(), "10,000 log calls must complete while Logstash is unreachable"
    shutdown_logging()  # drains the queues; the counters stay readable
    stats = log_stats()
    assert stats["logstash"]["written"] == 0
    assert stats["logstash"]["dropped"] >= N
    assert stats["stdout"]["dropped"] + stats["stdout"]["written"] >= N


def test_wedged_logstash_never_blocks_callers_and_counts_drops(capsys: pytest.CaptureFixture[str]) -> None:
    # A listener that accepts and never reads: the sender's socket buffer fills and stays full.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        configure_logging(_settings(server.getsockname()[1], log_queue_size=500))
        caller = _log_many(logging.getLogger("load"), N, payload="x" * 2048)
        caller.join(60)
        assert not caller.is_alive(), "log calls must not wait on a wedged Logstash"
        time.sleep(0.2)
        stats = log_stats()
        assert stats["logstash"]["dropped"] > 0, "records that could not be queued or sent are counted"
        assert stats["logstash"]["written"] < N


def _listener() -> tuple[socket.socket, list[bytes], threading.Thread]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    received: list[bytes] = []

    def serve() -> None:
        server.settimeout(10)
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(3)
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                received.append(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, received, thread


router = APIRouter()


@router.get("/hello")
async def hello() -> dict[str, str]:
    user_var.set("alice")
    logging.getLogger("hello").warning("greeting %s", "alice", extra={"greeting": "hi"})
    return {"hello": "alice"}


async def test_logstash_lines_carry_the_design_fields(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server, received, thread = _listener()
    with server:
        settings = ServiceSettings(
            service_name="log-test",
            env="test",
            logstash_host="127.0.0.1",
            logstash_port=server.getsockname()[1],
            zipkin_endpoint=None,
            redis_url=redis_url,
        )
        app = create_app(settings, routers=[router])
        async with running_app(app) as client:
            response = await client.get("/hello", headers={"x-request-id": "req-42"})
        assert response.status_code == 200
        shutdown_logging()  # flush and close the socket
        thread.join(5)
    lines = [json.loads(line) for line in b"".join(received).splitlines() if line.strip()]
    greeting = next(line for line in lines if line.get("logger_name") == "hello")
    access = next(
        line for line in lines if line.get("logger_name") == "access" and line["http.path"] == "/hello"
    )
    for event in (greeting, access):
        assert event["service"] == "log-test"
        assert event["env"] == "test"
        assert event["@version"] == "1"
        assert "@timestamp" in event
        assert len(event["trace_id"]) == 32
        assert len(event["span_id"]) == 16
        assert event["request_id"] == "req-42"
    assert greeting["trace_id"] == access["trace_id"]
    assert greeting["level"] == "WARNING"
    assert greeting["message"] == "greeting alice"
    assert greeting["user"] == "alice"
    assert greeting["greeting"] == "hi"
    assert (access["http.method"], access["http.status_code"], access["http.route"]) == ("GET", 200, "/hello")
    assert isinstance(access["http.duration_ms"], float)
    # stdout carries the same JSON shape
    stdout_events = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    assert any(
        e.get("logger_name") == "hello" and e["trace_id"] == greeting["trace_id"] for e in stdout_events
    )


def test_exception_logs_carry_stack_trace(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(ServiceSettings(service_name="log-test", env="test", zipkin_endpoint=None))
    try:
        raise ValueError("bad thing")
    except ValueError:
        logging.getLogger("oops").exception("it failed")
    shutdown_logging()
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    event = next(e for e in events if e.get("logger_name") == "oops")
    assert event["level"] == "ERROR"
    assert "ValueError: bad thing" in event["stack_trace"]


class _CountingStream:
    """A stdout that counts its writes (each one is a syscall on a real file)."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_records_go_out_in_batches_and_soon(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = _CountingStream()
    monkeypatch.setattr("sys.stdout", stream)
    configure_logging(ServiceSettings(service_name="log-test", env="test", zipkin_endpoint=None))
    logger = logging.getLogger("batch")

    logger.info("alone")
    waited = time.monotonic()
    wait_until(
        "a lone record written without waiting for more", lambda: stream.writes, timeout_s=2, every_s=0.01
    )
    assert time.monotonic() - waited < 0.5, "a lone record is written within about FLUSH_S"

    stream.writes.clear()
    for i in range(2_000):
        logger.info("record %d", i)
    shutdown_logging()
    lines = [line for chunk in stream.writes for line in chunk.splitlines()]
    assert [json.loads(line)["message"] for line in lines] == [f"record {i}" for i in range(2_000)]
    assert len(stream.writes) <= 20, f"2,000 records took {len(stream.writes)} writes, not one each"
    assert log_stats()["stdout"] == {"written": 2_001, "dropped": 0}  # and the lone one


def _messages(stream: _CountingStream) -> list[str]:
    return [json.loads(line)["message"] for chunk in list(stream.writes) for line in chunk.splitlines()]


def test_a_warning_goes_out_at_once_and_a_small_buffer_before_it_fills(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = _CountingStream()
    monkeypatch.setattr("sys.stdout", stream)
    monkeypatch.setattr("chassis.logging.FLUSH_S", 30.0)  # no periodic write during this test
    configure_logging(ServiceSettings(service_name="log-test", zipkin_endpoint=None, log_queue_size=100))
    logger = logging.getLogger("wake")

    logger.info("before")
    time.sleep(0.3)
    assert _messages(stream) == [], "an INFO line waits for the next periodic write"
    logger.warning("trouble")
    wait_until(
        "the warning and the line before it",
        lambda: _messages(stream) == ["before", "trouble"],
        timeout_s=5,
        every_s=0.01,
    )

    # a buffer of 100: half of it waiting wakes the writer (at 256 it would fill and drop)
    for i in range(60):
        logger.info("line %d", i)
    wait_until(
        "the buffer written at half full", lambda: len(_messages(stream)) >= 52, timeout_s=5, every_s=0.01
    )
    shutdown_logging()
    assert log_stats()["stdout"] == {"written": 62, "dropped": 0}


def test_a_process_that_exits_at_once_still_writes_its_last_records() -> None:
    script = (
        "import logging, sys\n"
        "from chassis import ServiceSettings\n"
        "from chassis.logging import configure_logging\n"
        "configure_logging(ServiceSettings(service_name='log-test', zipkin_endpoint=None))\n"
        "logging.getLogger('start').error('config-service unusable, giving up')\n"
        "sys.exit(3)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [e["message"] for e in events] == ["config-service unusable, giving up"], done.stderr
