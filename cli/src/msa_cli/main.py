"""The ``msa`` command.

msa dev up [--zipkin] [--free-ports] [--only a,b]   run the compose topology as local processes
                                                    (a service that exits is started again)
msa dev plan                                        show what `dev up` would run, and with what env
msa demo [--web URL] [--mobile URL] ...             a narrated walkthrough against a running platform
msa load [--users N] [--duration S] ...             web and mobile users (Locust), then a summary table
msa doctor [--strict]                               what this machine has for each way of running
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
from pathlib import Path

from msa_cli import load  # imports no Locust: that runs in its own process
from msa_cli.devstack import DevStack, DevStackError
from msa_cli.where import Urls, find_urls, forget_dev_urls, write_dev_urls

__all__ = ["main"]

ZIPKIN_JAR_CACHE = Path.home() / ".cache" / "msa-platform" / "zipkin-server-3.6.1-exec.jar"
SUPERVISE_EVERY_S = 0.5


def _repo_root() -> Path:
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "docker-compose.yml").exists():
            return folder
    raise SystemExit("msa: no docker-compose.yml here or above; run it inside the msa-platform checkout")


def _state_dir(root: Path, args: argparse.Namespace) -> Path:
    return Path(args.state_dir) if getattr(args, "state_dir", None) else root / "var" / "dev"


def _stack(args: argparse.Namespace) -> DevStack:
    root = _repo_root()
    jar = Path(args.zipkin_jar) if args.zipkin_jar else ZIPKIN_JAR_CACHE
    return DevStack(
        compose_file=root / "docker-compose.yml",
        state_dir=_state_dir(root, args),
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
        if (urls := _dev_urls(stack)) is not None:
            write_dev_urls(stack.state_dir, urls)  # where `msa demo` and `msa load` find them
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
        forget_dev_urls(stack.state_dir)
        stack.stop()
        print("stopped.", flush=True)


def _dev_urls(stack: DevStack) -> Urls | None:
    """Where this run's gateways answer; None when it runs without them (``--only``)."""
    names = {"web": "gateway-web", "mobile": "gateway-mobile", "dashboard": "ops-dashboard"}
    urls = {key: stack.services[name].url for key, name in names.items() if name in stack.services}
    if "web" not in urls or "mobile" not in urls:
        return None
    return Urls(**urls, **({"zipkin": stack.zipkin_url} if stack.zipkin_url else {}))


def _platform_urls(args: argparse.Namespace, needed: tuple[str, ...]) -> Urls:
    """The URLs given as options, the ``needed`` others found running (``msa_cli.where``); says
    where from."""
    given = {
        key: value for key in ("web", "mobile", "dashboard", "zipkin") if (value := getattr(args, key, None))
    }
    try:
        root = _repo_root()
    except SystemExit:  # outside a checkout: nothing to look for
        found, source = Urls(), "the default ports"
    else:
        if set(needed) <= set(given):
            found, source = Urls(), "options"
        else:
            found, source = find_urls(root, _state_dir(root, args))
    urls = dataclasses.replace(found, **given)
    print(f"platform: web {urls.web}, mobile {urls.mobile} (from {source})", flush=True)
    return urls


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

    return demo.run(_platform_urls(args, needed=("web", "mobile", "dashboard", "zipkin")))


def _load(args: argparse.Namespace) -> int:
    urls = _platform_urls(args, needed=("web", "mobile"))
    return load.run(
        web=urls.web,
        mobile=urls.mobile,
        users=args.users,
        duration_s=args.duration,
        spawn_rate=args.spawn_rate,
    )


def _doctor(args: argparse.Namespace) -> int:
    from msa_cli import doctor

    return doctor.run(ZIPKIN_JAR_CACHE, strict=args.strict)


def _add_demo_load_and_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fallback = dataclasses.asdict(Urls())
    demo = sub.add_parser("demo", help="a narrated walkthrough against a running platform")
    for key in ("web", "mobile", "dashboard", "zipkin"):
        demo.add_argument(f"--{key}", help=f"(default: where it runs, else {fallback[key]})")
    demo.set_defaults(func=_demo)
    loader = sub.add_parser("load", help="web and mobile users (Locust, headless), then a summary table")
    loader.add_argument("--users", type=load.at_least_one, default=10, help="simulated people (default 10)")
    loader.add_argument("--duration", type=load.at_least_one, default=60, help="seconds (default 60)")
    loader.add_argument(
        "--spawn-rate", type=load.more_than_zero, default=5.0, help="users started per second (default 5)"
    )
    for key in ("web", "mobile"):
        loader.add_argument(f"--{key}", help=f"(default: where it runs, else {fallback[key]})")
    loader.set_defaults(func=_load)
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
    _add_demo_load_and_doctor(sub)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
