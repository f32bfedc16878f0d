"""Headless Chromium for tests: the machine's own /usr/bin/chromium (Debian package), driven by
Playwright from PyPI; no browser is ever downloaded."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "screenshot_when"]

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
