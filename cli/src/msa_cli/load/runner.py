"""`msa load`: the journeys of locustfile.py, headless and bounded, then one summary table.

Locust runs as a subprocess (its gevent monkey-patching stays out of this process), in its own
session so a Ctrl-C here reaches it once, through us. Its CSV output is what the table is made of.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from msa_cli.demo import START_HINT

__all__ = ["Row", "command", "read_stats", "run", "table"]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
STOP_TIMEOUT_S = 3  # running tasks may finish their request when the time is up
GRACE_S = 60  # past duration + ramp-up: Locust is stuck, and is stopped
PROGRESS_EVERY_S = 10.0


@dataclass(frozen=True)
class Row:
    method: str  # "" on the totals row
    name: str
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    rps: float


def command(
    *, web: str, mobile: str, users: int, spawn_rate: float, duration_s: int, csv_prefix: Path
) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--users", str(users), "--spawn-rate", str(spawn_rate), "--run-time", f"{duration_s}s",
        "--stop-timeout", str(STOP_TIMEOUT_S), "--csv", str(csv_prefix),
        "--web-url", web.rstrip("/"), "--mobile-url", mobile.rstrip("/"),
    ]  # fmt: skip


def _number(text: str) -> float | None:
    return None if text in ("", "N/A") else float(text)


def read_stats(path: Path) -> list[Row]:
    """Locust's <prefix>_stats.csv: one row per request name, the totals last ("Aggregated")."""
    with path.open(newline="") as handle:
        return [
            Row(
                method=line["Type"],
                name="total" if line["Name"] == "Aggregated" else line["Name"],
                requests=int(line["Request Count"]),
                failures=int(line["Failure Count"]),
                p50_ms=_number(line["50%"]),
                p95_ms=_number(line["95%"]),
                rps=float(line["Requests/s"]),
            )
            for line in csv.DictReader(handle)
        ]


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
    """One line from the newest totals row Locust wrote to <prefix>_stats_history.csv (every second)."""
    try:
        with history.open(newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    except (OSError, KeyError):
        return None
    if not rows:
        return None
    last = rows[-1]
    return (
        f"  {time.monotonic() - started:4.0f} s: {last['User Count']} users, "
        f"{last['Total Request Count']} requests, {last['Total Failure Count']} failures, "
        f"{float(last['Requests/s']):.1f} req/s"
    )


def _stop(process: subprocess.Popen[bytes], signum: int) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signum)


def _fail(message: str) -> int:
    print(f"msa load: {message}", file=sys.stderr, flush=True)
    return 1


def _supervise(process: subprocess.Popen[bytes], history: Path, deadline_s: float) -> str | None:
    """Wait for Locust, printing progress; forward Ctrl-C / SIGTERM. How it ended early, if it did."""
    ended: list[str] = []

    def forward(signum: int, frame: object) -> None:
        ended.append("stopped by a signal")
        _stop(process, signal.SIGTERM)  # Locust stops its users and still writes its CSV

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
                _stop(process, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    _stop(process, signal.SIGKILL)
                    process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return ended[0] if ended else None


def _report(folder: Path, ended: str | None) -> int:
    """The table from Locust's CSV; non-zero when nothing was sent, a request failed, or it hung."""
    stats = folder / "load_stats.csv"
    rows = read_stats(stats) if stats.exists() else []
    if not rows or rows[-1].requests == 0:
        tail = (folder / "locust.log").read_text(errors="replace").splitlines()[-20:]
        return _fail("no request was sent; Locust said:\n" + "\n".join(tail))
    print(table(rows), flush=True)
    total = rows[-1]
    if total.failures:
        with (folder / "load_failures.csv").open(newline="") as handle:
            for failed in csv.DictReader(handle):
                what = f"{failed['Method']} {failed['Name']}: {failed['Error']}"
                print(f"  {failed['Occurrences']}x {what[:240]}", flush=True)
        return _fail(f"{total.failures} of {total.requests} requests failed")
    if ended and ended != "stopped by a signal":
        return _fail(f"Locust {ended}, and was stopped")
    print(f"msa load: no request failed{f' ({ended})' if ended else ''}.", flush=True)
    return 0


def run(*, web: str, mobile: str, users: int, duration_s: int, spawn_rate: float) -> int:
    problem = _unreachable({"gateway-web": web, "gateway-mobile": mobile})
    if problem:
        return _fail(problem)
    print(f"msa load: {users} users for {duration_s} s against {web} (web) and {mobile} (mobile)", flush=True)
    with tempfile.TemporaryDirectory(prefix="msa-load-") as tmp:
        folder = Path(tmp)
        args = command(
            web=web, mobile=mobile, users=users, spawn_rate=spawn_rate, duration_s=duration_s,
            csv_prefix=folder / "load",
        )  # fmt: skip
        with (folder / "locust.log").open("wb") as log:
            # cwd: a folder of ours, so no locust.conf or pyproject.toml of the caller's is read
            process = subprocess.Popen(
                args, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline_s = duration_s + users / spawn_rate + STOP_TIMEOUT_S + GRACE_S
        ended = _supervise(process, folder / "load_stats_history.csv", deadline_s)
        return _report(folder, ended)
