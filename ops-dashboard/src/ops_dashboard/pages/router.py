"""``GET /``: the dashboard page. Plain HTML, CSS and JavaScript shipped in the package: no CDN,
no build step, so it works offline and the image needs nothing else."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "router", "static_files"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# Everything the page loads comes from here; Zipkin is only ever a link.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

router = APIRouter(tags=["page"])


@router.get("/", summary="The dashboard page", response_class=FileResponse, include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"},
    )


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)
