"""The ``msa`` command.

msa dev up [--zipkin] [--free-ports] [--only a,b]   run the compose topology as local processes
                                                    (a service that exits is started again)
msa dev plan                                        show what `dev up` would run, and with what env
msa demo [--web URL] [--mobile URL] ...             a narrated walkthrough against a running platform
msa doctor [--strict]                               what this machine has for each way of running
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from msa_cli.devstack import DevStack, DevStackError

__all__ = ["main"]

ZIPKIN_JAR_CACHE = Path.home() / ".cache" / "msa-platform" / "zipkin-server-3.6.1-exec.jar"
SUPERVISE_EVERY_S = 0.5


def _repo_root() -> Path:
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "docker-compose.yml").exists():
            return folder
    raise SystemExit("msa: no docker-compose.yml here or above; run it inside the msa-platform checkout")


def _stack(args: argparse.Namespace) -> DevStack:
    root = _repo_root()
    jar = Path(args.zipkin_jar) if args.zipkin_jar else ZIPKIN_JAR_CACHE
    return DevStack(
        compose_file=root / "docker-compose.yml",
        state_dir=Path(args.state_dir) if args.state_dir else root / "var" / "dev",
        free_ports=args.free_ports,
        redis_url=args.redis_url,
        zipkin_jar=jar if args.zipkin else None,
        only=set(args.only.split(",")) if args.only else None,
    )


def _table(stack: DevStack) -> str:
    rows = [("service", "url", "log")]
    rows += [(s.name, s.url, str(s.log_file)) for s in stack.services.values()]
    rows.append(("redis", stack.redis_url or "-", "(private redis-server)"))
    rows.append(
        ("zipkin", (stack.zipkin_url or "not running") + ("/zipkin/" if stack.zipkin_url else ""), "")
    )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows)


def _dev_up(args: argparse.Namespace) -> int:
    stack = _stack(args)

    def on_signal(signum: int, frame: object) -> None:
        # Stop once: further signals are ignored while the children shut down.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.plan()
        stack.start()
        print(_table(stack), flush=True)
        print("waiting for every /health/ready ...", flush=True)
        stack.wait_ready(timeout_s=args.timeout)
        print("all services ready. Ctrl-C stops everything.", flush=True)
        while True:
            # compose restarts a service that exits (restart: unless-stopped); so does this loop
            time.sleep(SUPERVISE_EVERY_S)
            for message in stack.supervise():
                print(message, file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        return 0
    except DevStackError as exc:
        print(f"msa dev up: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping ...", flush=True)
        stack.stop()
        print("stopped.", flush=True)


def _dev_plan(args: argparse.Namespace) -> int:
    stack = _stack(args)
    try:
        planned = stack.plan()
    except DevStackError as exc:
        print(f"msa dev plan: {exc}", file=sys.stderr)
        return 1
    for service in planned.values():
        print(f"{service.name}: {' '.join(service.command)}  (port {service.port})")
        for key, value in sorted(service.env.items()):
            print(f"    {key}={value}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from msa_cli import demo

    urls = demo.Urls(web=args.web, mobile=args.mobile, dashboard=args.dashboard, zipkin=args.zipkin)
    return demo.run(urls)


def _doctor(args: argparse.Namespace) -> int:
    from msa_cli import doctor

    return doctor.run(ZIPKIN_JAR_CACHE, strict=args.strict)


def _add_demo_and_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="a narrated walkthrough against a running platform")
    for flag, default in (
        ("--web", "http://localhost:8080"),
        ("--mobile", "http://localhost:8081"),
        ("--dashboard", "http://localhost:8090"),
        ("--zipkin", "http://localhost:9411"),
    ):
        demo.add_argument(flag, default=default, help=f"(default {default})")
    demo.set_defaults(func=_demo)
    doctor = sub.add_parser("doctor", help="what this machine has for each way of running")
    doctor.add_argument("--strict", action="store_true", help="exit 1 when anything is missing or in use")
    doctor.set_defaults(func=_doctor)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="msa", description="msa-platform developer commands")
    sub = parser.add_subparsers(dest="group", required=True)
    dev = sub.add_parser("dev", help="run the topology locally, without Docker")
    dev_sub = dev.add_subparsers(dest="command", required=True)
    for name, func, text in (("up", _dev_up, "start every service"), ("plan", _dev_plan, "print the plan")):
        cmd = dev_sub.add_parser(name, help=text)
        cmd.add_argument("--free-ports", action="store_true", help="free ports even for published services")
        cmd.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
        cmd.add_argument(
            "--zipkin", action="store_true", help="start Zipkin from its jar if none runs on :9411"
        )
        cmd.add_argument("--zipkin-jar", help=f"Zipkin server jar (default {ZIPKIN_JAR_CACHE})")
        cmd.add_argument("--only", help="comma-separated services to run")
        cmd.add_argument("--state-dir", help="logs and volumes (default var/dev in the checkout)")
        cmd.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness")
        cmd.set_defaults(func=func)
    _add_demo_and_doctor(sub)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
