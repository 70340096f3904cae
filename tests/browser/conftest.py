"""One headless Chromium (Debian's, not a downloaded one) for all browser tests; a fresh phone per test.

Package-scoped, not session-scoped: Playwright's sync API keeps an event loop running in the main thread
while it is open, and tests elsewhere that call asyncio.run() must not meet it.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="package")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("the browser tests need Debian's Chromium: apt-get install -y chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def phone(browser) -> Iterator:
    """A phone-sized touch screen in London: its own zone differs from the garage's New York."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2, timezone_id="Europe/London", locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shot():
    """Save a full-page screenshot as artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{re.sub(r'[^a-z0-9-]', '-', name)}.png"), full_page=True)

    return take
