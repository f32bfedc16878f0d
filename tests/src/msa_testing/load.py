"""`msa load` from a test: run it as a user does (a subprocess, bounded), and read the summary
table it prints. Used by cli/tests/test_cli_load.py and tests/containers/test_load.py."""

from __future__ import annotations

import subprocess
import sys

__all__ = ["load_args", "run_load", "start_load", "summary"]


def load_args(web: str, mobile: str, *, users: int, duration_s: int) -> list[str]:
    return [sys.executable, "-m", "msa_cli.main", "load", "--web", web, "--mobile", mobile,
            "--users", str(users), "--duration", str(duration_s)]  # fmt: skip


def run_load(web: str, mobile: str, *, users: int, duration_s: int) -> subprocess.CompletedProcess[str]:
    """Ends by itself after ``duration_s``; the timeout is the test's own bound on top."""
    return subprocess.run(
        load_args(web, mobile, users=users, duration_s=duration_s),
        capture_output=True,
        text=True,
        timeout=duration_s + 90,
        check=False,
    )


def start_load(web: str, mobile: str, *, users: int, duration_s: int) -> subprocess.Popen[str]:
    """In the background: ``send_signal(SIGINT)`` stops it early, and it still prints its table."""
    return subprocess.Popen(
        load_args(web, mobile, users=users, duration_s=duration_s),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def summary(out: str) -> dict[str, tuple[int, int]]:
    """The table `msa load` printed: "METHOD web|mobile path" and "total" -> (requests, failures)."""
    rows = {}
    for line in out.splitlines():
        words = line.split()
        if len(words) >= 6 and words[0] in ("GET", "POST", "total") and words[-5].isdigit():
            rows[" ".join(words[:-5])] = (int(words[-5]), int(words[-4]))
    return rows
