"""The storefront: ``GET /`` and ``/storefront/*``, plain HTML, CSS and JavaScript modules shipped in
the package (no CDN, no build step), talking only to this gateway's own API; ``/img/products/*``:
the product pictures catalog names.

Every file carries a strict Content-Security-Policy (scripts from here only, none inline) and
``nosniff``; files are revalidated (``no-cache`` + ETag: the names carry no version), pictures are
cached a day (they never change for an id). Unknown files are 404 problem+json like any other path.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from gateway_web.dependencies import SettingsDep
from gateway_web.storefront.schemas import StorefrontConfig
from gateway_web.storefront.service import product_picture

__all__ = ["PAGE_HEADERS", "STATIC_DIR", "UNTRACED_PATHS", "StorefrontFiles", "router"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Everything the page loads comes from this origin; Zipkin is only ever a link.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
_PICTURE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=86400",
}

# The page, its files (config.json too: three settings, no downstream) and pictures: a listing view
# loads a score of them, and a trace or an access line each would bury its API calls in Zipkin and
# Kibana: their access lines are at DEBUG, but for a 4xx or 5xx. Rate limited as ever.
UNTRACED_PATHS = ("/", "/storefront/*", "/img/products/*")

router = APIRouter(tags=["storefront"], include_in_schema=False)


@router.get("/", summary="The storefront page")
async def index() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS
    )


@router.get("/storefront/config.json", summary="What the storefront page needs to know of this gateway")
async def config(settings: SettingsDep, response: Response) -> StorefrontConfig:
    response.headers.update(PAGE_HEADERS)
    return StorefrontConfig(
        zipkin_ui_url=settings.zipkin_ui_url,
        csrf_header=settings.auth.csrf_header,
        csrf_cookie=settings.auth.csrf_cookie_name,
    )


@router.get("/img/products/{name}", summary="A product picture (SVG), as catalog's image_url names it")
async def picture(name: str) -> Response:
    return Response(product_picture(name=name), media_type="image/svg+xml", headers=_PICTURE_HEADERS)


class StorefrontFiles(StaticFiles):
    """``/storefront/*``: the page's files, each with the page's headers."""

    def __init__(self) -> None:
        super().__init__(directory=STATIC_DIR)

    async def get_response(self, path: str, scope: MutableMapping[str, Any]) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response
