"""`msa load` runs web and mobile users against the running topology, bounded, and prints a
summary table with zero failures; with nothing listening it says what to do. The table is what
Locust counted at its end, a failed request or a non-zero Locust exit fails the run, Locust never
outlives it, and shoppers leave nearly sold-out products alone. The compose profile `load` runs
the same command inside the compose network (tests/containers/test_load.py runs it)."""

from __future__ import annotations

import csv
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from msa_cli.compose import load_compose
from msa_cli.devstack import free_port
from msa_cli.load import runner
from msa_cli.main import main
from msa_testing.containers import PINNED_COMPOSE
from msa_testing.fixtures import REPO, Topology
from msa_testing.load import load_args, run_load, summary
from msa_testing.workspace import console_scripts


def test_load_runs_web_and_mobile_users_without_a_failure(topology: Topology) -> None:
    web, mobile = topology.url("gateway-web"), topology.url("gateway-mobile")
    done = run_load(web, mobile, users=5, duration_s=8)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    for column in ("request", "reqs", "fails", "p50 ms", "p95 ms", "req/s"):
        assert column in done.stdout, column
    rows = summary(done.stdout)
    requests, failures = rows["total"]
    assert failures == 0
    assert requests >= 10, "5 users for 8 s, a step every 0.5-2 s"
    assert requests == sum(r for name, (r, _) in rows.items() if name != "total")
    assert any(name.split()[1] == "web" and r for name, (r, _) in rows.items() if name != "total")
    assert any(name.split()[1] == "mobile" and r for name, (r, _) in rows.items() if name != "total")
    assert "msa load: no request failed." in done.stdout


def test_load_says_how_to_start_the_platform_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        load_args(url, url, users=2, duration_s=5), capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode != 0
    assert f"gateway-web at {url} is not reachable" in done.stderr
    assert "docker compose up, or uv run msa dev up" in done.stderr
    assert "p95 ms" not in done.stdout


def test_the_compose_profile_load_runs_msa_load_in_the_compose_network() -> None:
    """`docker compose --profile load up` adds it; a plain `up` (and `msa dev up`) leaves it out."""
    compose = [str(PINNED_COMPOSE), "--project-directory", str(REPO)]
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}  # the file and .env decide, not this shell
    with_profile = subprocess.run(
        [*compose, "--profile", "load", "config", "--format", "json"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    load = json.loads(with_profile.stdout)["services"]["load"]
    assert load["build"]["args"]["SERVICE"] == "msa-cli"
    assert load["build"]["args"]["COMMAND"] == "msa", "the image's `service` is msa-cli's script"
    assert console_scripts()["msa"].startswith("msa_cli.")
    assert load["command"][:2] == ["msa", "load"]
    assert "http://gateway-web:8000" in load["command"]
    assert "http://gateway-mobile:8000" in load["command"]
    assert set(load["depends_on"]) == {"gateway-web", "gateway-mobile"}
    assert load["restart"] == "no"
    default = subprocess.run(
        [*compose, "config", "--services"], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    assert "load" not in default.stdout.split()
    assert "load" not in load_compose(REPO / "docker-compose.yml")


def _locust(args: list[str], folder: Path) -> int:
    """Locust as `msa load` runs it, its output in ``folder``."""
    with (folder / "locust.log").open("wb") as log:
        done = subprocess.run(args, cwd=folder, stdout=log, stderr=subprocess.STDOUT, timeout=90, check=False)
    return done.returncode


def test_the_table_is_what_locust_counted_at_its_end(
    topology: Topology, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not its CSV, which it rewrites once a second and not at shutdown: the last second is missing there."""
    args = runner.command(
        web=topology.url("gateway-web"), mobile=topology.url("gateway-mobile"),
        users=5, spawn_rate=5.0, duration_s=6, prefix=tmp_path / "load",
    )  # fmt: skip
    returncode = _locust(args, tmp_path)
    assert returncode == 0, (tmp_path / "locust.log").read_text()
    assert runner.report(tmp_path, returncode, None) == 0
    out = capsys.readouterr().out
    print(out)
    rows = summary(out)
    # Locust's own --json-file, written after its users stopped
    final = json.loads((tmp_path / "load.json").read_text())
    counted = {f"{e['method']} {e['name']}": (e["num_requests"], e["num_failures"]) for e in final}
    assert {name: counts for name, counts in rows.items() if name != "total"} == counted
    assert rows["total"] == (sum(r for r, _ in counted.values()), 0)
    with (tmp_path / "load_stats.csv").open(newline="") as handle:
        lagging = next(int(r["Request Count"]) for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    assert lagging <= rows["total"][0]

    # Locust's exit code has a say: 1 when a journey raised, though no request failed
    assert runner.report(tmp_path, 1, None) == 1
    assert "no request failed, but Locust exited with 1" in capsys.readouterr().err
    # ... unless we stopped it: SIGTERM before its handler was in place ends it with -15
    assert runner.report(tmp_path, -15, runner.SIGNALLED) == 0
    assert runner.report(tmp_path, -15, None) == 1


def test_a_failed_request_fails_the_run_and_says_why(topology: Topology) -> None:
    # gateway-web answers /health/live, but has no /m/products: every app request fails with 404
    web = topology.url("gateway-web")
    done = run_load(web, web, users=2, duration_s=4)
    print(done.stdout, done.stderr)
    assert done.returncode == 1
    requests, failures = summary(done.stdout)["total"]
    assert 0 < failures <= requests
    assert f"msa load: {failures} of {requests} requests failed" in done.stderr
    assert "x GET mobile /m/products: 404 Not Found" in done.stdout, "the status and the problem's detail"
    assert "no request failed" not in done.stdout


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--spawn-rate", "0", "argument --spawn-rate: must be more than 0 and finite, not 0"),
        ("--spawn-rate", "-1", "argument --spawn-rate: must be more than 0 and finite, not -1"),
        ("--users", "0", "argument --users: must be at least 1, not 0"),
        ("--duration", "0", "argument --duration: must be at least 1, not 0"),
        ("--users", "two", "argument --users: must be a whole number, not two"),
    ],
)
def test_load_refuses_options_it_cannot_run_with(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["load", f"{option}={value}"])
    assert exited.value.code == 2
    assert f"msa load: error: {message}" in capsys.readouterr().err


def test_locust_is_stopped_when_msa_load_is_interrupted_before_it_watches(
    topology: Topology, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ctrl-C between starting Locust and installing the handlers that forward it."""
    started: list[subprocess.Popen[bytes]] = []

    def interrupted(process: subprocess.Popen[bytes], history: Path, deadline_s: float) -> str | None:
        started.append(process)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_supervise", interrupted)
    code = runner.run(
        web=topology.url("gateway-web"), mobile=topology.url("gateway-mobile"),
        users=2, duration_s=60, spawn_rate=1.0,
    )  # fmt: skip
    assert code == 1
    assert "msa load: interrupted" in capsys.readouterr().err
    assert started[0].poll() is not None, "Locust outlived msa load"


def test_progress_skips_a_row_locust_is_still_writing(tmp_path: Path) -> None:
    history = tmp_path / "load_stats_history.csv"
    header = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,Total Request Count,Total Failure Count\n"
    for partial in ("1,5,,Aggregated\n", "1,5,,Aggregated,1.5,0,12,\n", "1,5,,Aggregated,x,0,12,0\n"):
        history.write_text(header + partial)
        assert runner._progress(history, time.monotonic()) is None, partial
    history.write_text(header + "1,5,,Aggregated,1.5,0,12,0\n")
    assert (
        runner._progress(history, time.monotonic()) == "     0 s: 5 users, 12 requests, 0 failures, 1.5 req/s"
    )


class _AlmostSoldOutShop(BaseHTTPRequestHandler):
    """gateway-mobile for one shopper: a feed of two products in stock, one with 2 units left."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the gateways
    available = {"p-plenty": 50, "p-few": 2}
    ordered: list[str] = []

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/m/products":
            rows = [{"id": product, "in_stock": True} for product in self.available]
            self._answer(200, {"items": rows, "next_cursor": None})
        elif path.startswith("/m/products/"):
            product = path.rsplit("/", 1)[1]
            self._answer(200, {"id": product, "in_stock": True, "available": self.available[product]})
        else:
            self._answer(200, {"items": []})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/auth/token":
            self._answer(200, {"access_token": "a", "refresh_token": "r", "expires_in": 900})
        else:
            self.ordered.append(body["lines"][0]["product_id"])
            self._answer(201, {"id": "o-1"})

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # 50 shoppers connect at once


@pytest.fixture
def almost_sold_out_shop() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _AlmostSoldOutShop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_app_shoppers_leave_nearly_sold_out_products_alone(almost_sold_out_shop: str, tmp_path: Path) -> None:
    """As web shoppers do: the demo's last units (p-1006, p-1011, p-1018) survive a run."""
    _AlmostSoldOutShop.ordered.clear()
    args = runner.command(
        web=almost_sold_out_shop, mobile=almost_sold_out_shop,
        users=50, spawn_rate=50.0, duration_s=8, prefix=tmp_path / "load",
    )  # fmt: skip
    assert _locust([*args, "MobileShopper"], tmp_path) == 0, (tmp_path / "locust.log").read_text()
    assert _AlmostSoldOutShop.ordered, "50 shoppers for 8 s, one step in 12 an order"
    assert set(_AlmostSoldOutShop.ordered) == {"p-plenty"}
