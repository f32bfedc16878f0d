"""One-shot job `kibana-setup`: imports saved-objects.ndjson and makes msa-logs the default data view.

It starts once Kibana's status is `available` or `degraded` (the import works in both). Kibana's
import API answers HTTP 200 even when objects fail; this job reads the body and exits non-zero,
printing every error, unless ``success`` is true and every object was imported.
Standard library only: it runs in the plain Python base image.

    KIBANA_URL=http://localhost:5601 python deploy/kibana/setup.py
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OBJECTS = HERE / "saved-objects.ndjson"
DATA_VIEW_ID = "msa-logs"


def request(
    method: str, url: str, data: bytes | None = None, content_type: str = "application/json"
) -> tuple[int, Any]:
    # kbn-xsrf: Kibana refuses state-changing API calls without it.
    headers = {"kbn-xsrf": "true", "Content-Type": content_type}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, raw.decode(errors="replace")


# Kibana 8.15's saved-objects import works while the overall level is `degraded` (a plugin such as
# alerting or fleet is still settling); /api/status answers 503 only once core is unavailable.
# Waiting for `available` alone could fail a stack whose Kibana serves the import fine.
READY_LEVELS = ("available", "degraded")


def wait_for_kibana(base: str, attempts: int, delay_s: float) -> str:
    """The overall level Kibana reported once it could take the import."""
    last = "no answer"
    for _ in range(attempts):
        try:
            status, body = request("GET", f"{base}/api/status")
            level = (body.get("status", {}).get("overall", {}) if isinstance(body, dict) else {}).get("level")
            if status == 200 and level in READY_LEVELS:
                print(f"kibana-setup: Kibana is {level}", flush=True)
                return str(level)
            last = f"HTTP {status}, overall level {level!r}"
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(delay_s)
    raise SystemExit(f"kibana-setup: {base} not available after {attempts} attempts ({last})")


def multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def import_objects(base: str) -> None:
    content = OBJECTS.read_bytes()
    expected = sum(1 for line in content.splitlines() if line.strip())
    body, content_type = multipart("file", OBJECTS.name, content)
    status, answer = request("POST", f"{base}/api/saved_objects/_import?overwrite=true", body, content_type)
    ok = (
        status == 200
        and isinstance(answer, dict)
        and answer.get("success") is True
        and answer.get("successCount") == expected
    )
    if not ok:
        print(f"kibana-setup: import of {OBJECTS.name} FAILED (HTTP {status})", file=sys.stderr)
        errors = answer.get("errors", []) if isinstance(answer, dict) else [answer]
        for error in errors or [answer]:
            print(f"  {json.dumps(error)}", file=sys.stderr)
        raise SystemExit(1)
    print(f"kibana-setup: imported {expected} saved objects", flush=True)


def set_default_data_view(base: str) -> None:
    payload = json.dumps({"data_view_id": DATA_VIEW_ID, "force": True}).encode()
    status, answer = request("POST", f"{base}/api/data_views/default", payload)
    if status != 200:
        raise SystemExit(f"kibana-setup: setting the default data view failed: HTTP {status}: {answer}")
    print(f"kibana-setup: default data view is {DATA_VIEW_ID}", flush=True)


def main() -> int:
    base = os.environ.get("KIBANA_URL", "http://kibana:5601").rstrip("/")
    attempts = int(os.environ.get("SETUP_WAIT_ATTEMPTS", "150"))
    wait_for_kibana(base, attempts, float(os.environ.get("SETUP_WAIT_DELAY_S", "2")))
    import_objects(base)
    set_default_data_view(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
