"""One-shot job `elasticsearch-setup`: the 7-day ILM policy and the msa-logs-* index template.

Runs before Logstash starts (compose: logstash depends on this job completing), so the first
daily index already gets the template's mappings. Standard library only: it runs in the plain
Python base image. Exits non-zero, saying why, when Elasticsearch refuses either request.

    ELASTICSEARCH_URL=http://localhost:9200 python deploy/elasticsearch/setup.py
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
POLICY_NAME = "msa-logs-7d"
TEMPLATE_NAME = "msa-logs"


def request(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, raw.decode(errors="replace")


def wait_for_cluster(base: str, attempts: int, delay_s: float) -> None:
    last = "no answer"
    for _ in range(attempts):
        try:
            status, body = request("GET", f"{base}/_cluster/health?wait_for_status=yellow&timeout=5s")
            if status == 200 and isinstance(body, dict) and body.get("status") in ("yellow", "green"):
                return
            last = f"HTTP {status}: {body}"
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(delay_s)
    raise SystemExit(f"elasticsearch-setup: {base} not healthy after {attempts} attempts ({last})")


def put_acknowledged(base: str, path: str, body: Any) -> None:
    status, answer = request("PUT", f"{base}{path}", body)
    if status != 200 or not (isinstance(answer, dict) and answer.get("acknowledged") is True):
        raise SystemExit(f"elasticsearch-setup: PUT {path} failed: HTTP {status}: {answer}")
    print(f"elasticsearch-setup: PUT {path} acknowledged", flush=True)


def documents() -> list[tuple[str, Any]]:
    """(path, body) of each PUT, in order: the template names the policy, so the policy goes first."""
    policy = json.loads((HERE / "ilm-policy.json").read_text())
    template = json.loads((HERE / "index-template.json").read_text())
    return [(f"/_ilm/policy/{POLICY_NAME}", policy), (f"/_index_template/{TEMPLATE_NAME}", template)]


def main() -> int:
    base = os.environ.get("ELASTICSEARCH_URL", "http://elasticsearch:9200").rstrip("/")
    attempts = int(os.environ.get("SETUP_WAIT_ATTEMPTS", "90"))
    wait_for_cluster(base, attempts, float(os.environ.get("SETUP_WAIT_DELAY_S", "2")))
    for path, body in documents():
        put_acknowledged(base, path, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
