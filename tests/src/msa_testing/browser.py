"""Headless Chromium for tests: the machine's own /usr/bin/chromium (Debian package), driven by
Playwright from PyPI; no browser is ever downloaded."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Browser

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "launched", "screenshot_when"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.asynccontextmanager
async def launched(executable: str = CHROMIUM) -> AsyncIterator[Browser]:
    """Headless Chromium (Playwright's async API), closed on the way out: one launch for every
    browser test and benchmark. Playwright is imported here: it may be absent where no browser
    runs."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


def screenshot_when(url: str, selector: str, path: Path, timeout_s: float = 20.0) -> None:
    """Open ``url``, wait until ``selector`` matches, and save a full-page screenshot to ``path``
    (a test without a running event loop: Playwright's sync API)."""
    from playwright.sync_api import sync_playwright

    path.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.wait_for_selector(selector, timeout=timeout_s * 1000)
            page.screenshot(path=str(path), full_page=True)
        finally:
            browser.close()
