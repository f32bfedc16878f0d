"""Resilience under real faults, measured in one run against the platform in Docker.

From a throwaway copy of the working tree (compose project ``msa-platform-bench``), with every
limit changed by a commit to the stack's config repository, it prints side by side:
- bulkhead: inventory paused, a burst of product pages; order listing p50/p99 and the pages'
  latency with gateway-web's bulkhead off (1000) and on (8), and the calls it rejected;
- retries: reviews failing 30% (503): whole product pages without and with retries (budget 50%); reviews
  failing always: calls reviews receives per page without a retry budget and with it;
- deadline: reviews sleeping past gateway-web's deadline: the page's time, and the requests
  reviews dropped instead of serving;
- rate limit: a burst of 30 from one user over a limit of 5 per 10 s, another user meanwhile;
- overload: 400 closed-loop clients on gateway-web's product page for 15 s: shed 503s and accepted
  answers (client-side p50/p99), the gateway's memory against its limit, recovery.

    uv run python scripts/bench_resilience.py

Needs a running Docker engine with Compose v2 and the base images (scripts/test.sh provides them).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from msa_testing.containers import ComposeStack, copy_working_tree, docker_problem
from msa_testing.resilience import (
    scenario_bulkhead,
    scenario_deadline,
    scenario_overload,
    scenario_rate_limit,
    scenario_retries,
)


def _bulkhead(figures: dict[str, Any]) -> None:
    print("\nbulkhead: inventory paused, product pages in a burst, orders listed meanwhile")
    print(
        f"  listing alone: p50 {figures['listing_idle']['p50_ms']} ms, p99 {figures['listing_idle']['p99_ms']} ms"
    )
    print(
        f"  {'gateway-web bulkhead':22} {'listing p50':>12} {'listing p99':>12} {'page p50':>9} {'pages':>6} {'rejected':>9}"
    )
    for label in ("without", "with"):
        phase = figures[label]
        print(
            f"  {label + ' (' + str(phase['limit']) + ')':22} {phase['listing']['p50_ms']:>10} ms"
            f" {phase['listing']['p99_ms']:>10} ms {phase['pages']['p50_ms']:>6} ms"
            f" {phase['pages']['requests']:>6} {phase['rejected']:>9}"
        )


def _retries(figures: dict[str, Any]) -> None:
    pages = figures["failing_30pct_no_retries"]["pages"]
    print(f"\nretries: reviews failing 30% (503), {pages} product pages each (retry budget 50%)")
    for label in ("no_retries", "retries"):
        phase = figures[f"failing_30pct_{label}"]
        print(
            f"  {label:12} whole pages {phase['whole']}/{phase['pages']} ({phase['whole'] / phase['pages']:.0%})"
        )
    print("reviews failing always: calls reviews receives per product page (a page makes one)")
    for label in ("no_budget", "budget"):
        phase = figures[f"failing_100pct_{label}"]
        print(
            f"  {label:12} {phase['calls_per_page']:.2f} calls per page ({phase['reviews_calls']} for {phase['pages']})"
        )


def _overload(figures: dict[str, Any]) -> None:
    print("\noverload: 400 clients, no backoff, on gateway-web's product page")
    print(f"  {figures['summary']}")
    print(
        f"  shed 503s: {figures['shed_ms']} ms; accepted: {figures['accepted_ms']} ms (page budget 2000 ms); "
        f"gateway {figures['gateway_mib']} of {figures['gateway_limit_mib']} MiB; recovered: {figures['recovered']}"
    )
    print(
        f"  the same crowd honoring Retry-After: statuses {figures['polite_statuses']}, "
        f"shed 503s {figures['polite_shed_ms']} ms, accepted {figures['polite_accepted_ms']} ms (probe)"
    )
    print(f"  shedding off, the same crowd: {figures['unshed_summary']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    problem = docker_problem()
    if problem:
        raise SystemExit(f"bench_resilience: {problem}")
    with tempfile.TemporaryDirectory(prefix="msa-bench-") as tmp:
        stack = ComposeStack(copy_working_tree(Path(tmp)), project="msa-platform-bench")
        stack.down("-v")
        try:
            stack.build()
            stack.up()
            bulkhead = scenario_bulkhead(stack)
            retries = scenario_retries(stack)
            deadline = scenario_deadline(stack)
            rate_limit = scenario_rate_limit(stack)
            overload = scenario_overload(stack)
        finally:
            stack.down("-v")
    _bulkhead(bulkhead)
    _retries(retries)
    print(f"\ndeadline: {json.dumps(deadline)}")
    print(f"\nrate limit: {json.dumps(rate_limit)}")
    _overload(overload)


if __name__ == "__main__":
    main()
