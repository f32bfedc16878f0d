"""`msa load`: the journeys of locustfile.py, headless and bounded, then one summary table.

Locust runs as a subprocess (its gevent monkey-patching stays out of this process), in its own
session so a Ctrl-C here reaches it once, through us; whatever happens here, it is stopped before
we return. The table is what Locust counted once its users had stopped (``--json-file``, written
at its shutdown; its CSV lags up to a second behind, and only feeds the progress lines), and its
exit code has a say: non-zero when a request failed or a journey raised.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from msa_cli.demo import START_HINT

__all__ = [
    "Row",
    "at_least_one",
    "command",
    "more_than_zero",
    "read_failures",
    "read_final",
    "report",
    "run",
    "table",
]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
STOP_TIMEOUT_S = 3  # running tasks may finish their request when the time is up
GRACE_S = 60  # past duration + ramp-up: Locust is stuck, and is stopped
KILL_AFTER_S = 10  # a Locust that ignores SIGTERM this long is killed
PROGRESS_EVERY_S = 10.0
SIGNALLED = "stopped by a signal"


@dataclass(frozen=True)
class Row:
    method: str  # "" on the totals row
    name: str
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    rps: float


def at_least_one(text: str) -> int:
    """argparse type of --users and --duration."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def more_than_zero(text: str) -> float:
    """argparse type of --spawn-rate."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text}") from None
    if not 0 < value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be more than 0 and finite, not {text}")
    return value


def command(
    *, web: str, mobile: str, users: int, spawn_rate: float, duration_s: int, prefix: Path
) -> list[str]:
    """Locust writes <prefix>.json at shutdown, <prefix>_failures.json (locustfile.py) and the CSVs."""
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--users", str(users), "--spawn-rate", str(spawn_rate), "--run-time", f"{duration_s}s",
        "--stop-timeout", str(STOP_TIMEOUT_S), "--csv", str(prefix), "--json-file", str(prefix),
        "--web-url", web.rstrip("/"), "--mobile-url", mobile.rstrip("/"),
    ]  # fmt: skip


def _percentile(times: dict[int, int], count: int, percent: float) -> float | None:
    """Locust's own (stats.calculate_response_time_percentile) over its rounded response times."""
    if not count:
        return None
    wanted, seen = int(count * percent), 0
    for response_time in sorted(times, reverse=True):
        seen += times[response_time]
        if count - seen <= wanted:
            return float(response_time)
    return 0.0


def _row(method: str, name: str, entries: list[dict[str, Any]], seconds: float) -> Row:
    times: dict[int, int] = {}
    for entry in entries:
        for response_time, count in entry["response_times"].items():
            times[int(response_time)] = times.get(int(response_time), 0) + count
    requests = sum(entry["num_requests"] for entry in entries)
    return Row(
        method=method,
        name=name,
        requests=requests,
        failures=sum(entry["num_failures"] for entry in entries),
        p50_ms=_percentile(times, requests, 0.5),
        p95_ms=_percentile(times, requests, 0.95),
        rps=requests / seconds,
    )


def read_final(path: Path) -> list[Row]:
    """Locust's --json-file: one entry per request name, as counted at its shutdown; the totals last."""
    entries: list[dict[str, Any]] = sorted(
        json.loads(path.read_text()), key=lambda entry: (entry["name"], entry["method"])
    )
    if not entries:
        return []
    # Locust's req/s: over the run, from its first request to its last (a second at least)
    first = min(entry["start_time"] for entry in entries)
    last = max(entry["last_request_timestamp"] or first for entry in entries)
    seconds = max(last - first, 1.0)
    rows = [_row(e["method"], e["name"], [e], seconds) for e in entries]
    return [*rows, _row("", "total", entries, seconds)]


def read_failures(path: Path) -> list[str]:
    """<prefix>_failures.json (locustfile.py): one line per distinct failure, the most frequent first."""
    try:
        failures: list[dict[str, Any]] = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    failures.sort(key=lambda failure: -failure["occurrences"])
    lines = []
    for failure in failures:
        what = f"{failure['method']} {failure['name']}: {failure['error']}"
        lines.append(f"  {failure['occurrences']}x {what[:240]}")
    return lines


def table(rows: list[Row]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    lines = [("request", "reqs", "fails", "p50 ms", "p95 ms", "req/s")]
    lines += [
        (f"{r.method} {r.name}".strip(), str(r.requests), str(r.failures), ms(r.p50_ms), ms(r.p95_ms),
         f"{r.rps:.1f}")
        for r in rows
    ]  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(6)]
    out = [
        "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(line))
        for line in lines
    ]
    return "\n".join([*out[:-1], "-" * len(out[0]), out[-1]])


def _unreachable(urls: dict[str, str]) -> str | None:
    for name, url in urls.items():
        try:
            httpx.get(f"{url.rstrip('/')}/health/live", timeout=3.0)
        except httpx.TransportError as exc:
            return f"{name} at {url} is not reachable ({type(exc).__name__}); {START_HINT}"
    return None


def _progress(history: Path, started: float) -> str | None:
    """One line from the newest totals row Locust wrote to <prefix>_stats_history.csv (every second).

    The file is written while we read it: a short or odd row means no line this time."""
    try:
        with history.open(newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
        if not rows:
            return None
        last = rows[-1]
        return (
            f"  {time.monotonic() - started:4.0f} s: {int(last['User Count'])} users, "
            f"{int(last['Total Request Count'])} requests, {int(last['Total Failure Count'])} failures, "
            f"{float(last['Requests/s']):.1f} req/s"
        )
    except (OSError, KeyError, ValueError, TypeError, csv.Error):
        return None


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass  # it ended meanwhile


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (Locust stops its users and writes its results), then SIGKILL if it does not end."""
    _signal(process, signal.SIGTERM)
    try:
        process.wait(timeout=KILL_AFTER_S)
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGKILL)
        process.wait()


def _fail(message: str) -> int:
    print(f"msa load: {message}", file=sys.stderr, flush=True)
    return 1


def _supervise(process: subprocess.Popen[bytes], history: Path, deadline_s: float) -> str | None:
    """Wait for Locust, printing progress; forward Ctrl-C / SIGTERM. How it ended early, if it did."""
    ended: list[str] = []

    def forward(signum: int, frame: object) -> None:
        ended.append(SIGNALLED)
        _signal(process, signal.SIGTERM)  # Locust stops its users and still writes its results

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    next_progress = started + PROGRESS_EVERY_S
    try:
        while process.poll() is None:
            time.sleep(0.2)
            if time.monotonic() >= next_progress:
                next_progress += PROGRESS_EVERY_S
                line = _progress(history, started)
                if line:
                    print(line, flush=True)
            if time.monotonic() - started > deadline_s:
                ended.append(f"did not stop by itself within {deadline_s:.0f} s")
                _stop(process)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return ended[0] if ended else None


def _log_tail(folder: Path) -> str:
    return "\n".join((folder / "locust.log").read_text(errors="replace").splitlines()[-20:])


def report(folder: Path, returncode: int, ended: str | None) -> int:
    """The table of Locust's final counts; non-zero when nothing was sent, a request failed, a
    journey raised (Locust's exit code), or Locust hung."""
    final = folder / "load.json"
    rows = read_final(final) if final.exists() else []
    if not rows or rows[-1].requests == 0:
        return _fail(
            f"no request was sent (Locust exited with {returncode}); Locust said:\n{_log_tail(folder)}"
        )
    print(table(rows), flush=True)
    total = rows[-1]
    if total.failures:
        for line in read_failures(folder / "load_failures.json"):
            print(line, flush=True)
        return _fail(f"{total.failures} of {total.requests} requests failed")
    if ended and ended != SIGNALLED:
        return _fail(f"Locust {ended}, and was stopped")
    # > 0: Locust's verdict (1: a journey raised, 2: Locust itself did); < 0: killed, not by us
    if returncode > 0 or (returncode < 0 and not ended):
        return _fail(f"no request failed, but Locust exited with {returncode}; it said:\n{_log_tail(folder)}")
    print(f"msa load: no request failed{f' ({ended})' if ended else ''}.", flush=True)
    return 0


def run(*, web: str, mobile: str, users: int, duration_s: int, spawn_rate: float) -> int:
    problem = _unreachable({"gateway-web": web, "gateway-mobile": mobile})
    if problem:
        return _fail(problem)
    deadline_s = duration_s + users / spawn_rate + STOP_TIMEOUT_S + GRACE_S
    print(f"msa load: {users} users for {duration_s} s against {web} (web) and {mobile} (mobile)", flush=True)
    with tempfile.TemporaryDirectory(prefix="msa-load-") as tmp:
        folder = Path(tmp)
        args = command(
            web=web, mobile=mobile, users=users, spawn_rate=spawn_rate, duration_s=duration_s,
            prefix=folder / "load",
        )  # fmt: skip
        with (folder / "locust.log").open("wb") as log:
            # cwd: a folder of ours, so no locust.conf or pyproject.toml of the caller's is read
            process = subprocess.Popen(
                args, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            ended = _supervise(process, folder / "load_stats_history.csv", deadline_s)
            return report(folder, process.returncode, ended)
        except KeyboardInterrupt:  # before our handlers were in place, or after Locust had ended
            return _fail("interrupted")
        finally:
            _stop(process)  # a no-op once it has ended; else nothing here may leave it running
