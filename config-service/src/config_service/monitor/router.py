"""``POST /monitor``: a GitHub/GitLab push webhook, or a form ``path=<app>``; answers the apps notified."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from fastapi import APIRouter, Request

from chassis.limits import read_limited_body
from chassis.openapi import raw_body
from config_service.dependencies import ClientDep, MonitorDep
from config_service.errors import BadWebhook
from config_service.monitor.service import paths_from_payload

__all__ = ["router"]

router = APIRouter(tags=["monitor"])

MAX_BODY = 1024 * 1024


@router.post(
    "/monitor",
    summary="Refresh the apps whose configuration a push changed",
    openapi_extra=raw_body(
        {
            "application/json": {"type": "object", "description": "a GitHub or GitLab push event"},
            "application/x-www-form-urlencoded": {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "an application, or *"}},
            },
        },
        one_type=False,
    ),
    responses={400: {"description": "neither a push event nor a form naming applications"}},
)
async def monitor(request: Request, monitor: MonitorDep, _: ClientDep) -> list[str]:
    body = await read_limited_body(request, limit=MAX_BODY)  # 413 while reading, not after
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    paths: list[str] = []
    apps: list[str] = []
    if content_type == "application/x-www-form-urlencoded":
        for value in parse_qs(body.decode(errors="replace")).get("path", []):
            # Spring's form: an app name (or a file path, mapped like a pushed file).
            (paths if "." in value or "/" in value else apps).append(value)
        bad = [app for app in apps if not app.replace("-", "").replace("_", "").isalnum() and app != "*"]
        if bad:
            raise BadWebhook("path must name an application")
    else:
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise BadWebhook("expected a GitHub/GitLab push payload (JSON) or form path=<app>") from exc
        paths = paths_from_payload(payload)
    return await monitor.on_webhook(paths, apps)
