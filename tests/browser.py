"""Real headless Chromium for the browser tests: Playwright driving Debian's /usr/bin/chromium.

In a test module (the fixtures are registered as ``playwright``, ``browser`` and ``page``)::

    from tests.browser import page_fixture  # noqa: F401  (fixtures)
    from tests.conftest import needs

    pytestmark = [*needs("chromium"), pytest.mark.urls("tests.browser_app.urls")]

    def test_it(live_server, page):
        page.goto(live_server.url + "/values/")

Playwright's sync API keeps an event loop running in the test's thread while it is started,
and Django refuses the ORM there (SynchronousOnlyOperation). So Playwright is started for each
test, after pytest-django's ``live_server`` (and its transactional database), and stopped
before that database is flushed. Each test gets a fresh browser, with no state left over.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import CHROMIUM

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def launch_options() -> dict[str, Any]:
    return {"executable_path": CHROMIUM, "headless": True, "args": ARGS}


@pytest.fixture(name="playwright")
def playwright_fixture(live_server: Any) -> Iterator[Any]:
    """Playwright, started after ``live_server`` so it stops before the database flush."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as started:
        yield started


@pytest.fixture(name="browser")
def browser_fixture(playwright: Any) -> Iterator[Any]:
    """A fresh headless Chromium (each context in it starts with empty storage)."""
    launched = playwright.chromium.launch(**launch_options())
    yield launched
    launched.close()


@pytest.fixture(name="page")
def page_fixture(browser: Any) -> Iterator[Any]:
    """A tab of a new browser context. Uncaught errors in the page fail the test."""
    context = browser.new_context()
    tab = context.new_page()
    errors = watch_errors(tab)
    yield tab
    context.close()
    assert not errors, f"errors in the page: {errors}"


def watch_errors(tab: Any) -> list[str]:
    """The uncaught errors and console errors of ``tab``, collected as they happen."""
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    tab.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    return errors


def persistent(playwright: Any, profile: Path) -> Any:
    """A browser context on the profile directory ``profile``, kept on disk between launches:
    closing it and launching again is a browser restart."""
    return playwright.chromium.launch_persistent_context(str(profile), **launch_options())


#: An init script: ``window.sseSwaps`` counts the events htmx's SSE extension swapped in.
COUNT_SSE_SWAPS = (
    "window.sseSwaps = 0; document.addEventListener('htmx:sseMessage', () => window.sseSwaps++);"
)


def sse_swapped(tab: Any, count: int) -> None:
    """Wait until htmx's SSE extension swapped ``count`` events into ``tab`` (a tab of a
    context given :data:`COUNT_SSE_SWAPS`) since it loaded."""
    tab.wait_for_function("(count) => window.sseSwaps >= count", arg=count)
