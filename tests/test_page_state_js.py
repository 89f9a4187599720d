"""PageState in real Chromium: a chat per tab, reset by a refresh, ended when the page closes."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connections

from statekit.cleanup import cleanup
from tests.browser import (  # noqa: F401  (fixtures: browser, page, playwright)
    browser_fixture,
    page_fixture,
    playwright_fixture,
)
from tests.conftest import needs
from tests.page_app import CLOSED

pytestmark = [*needs("chromium"), pytest.mark.urls("tests.page_app")]

SAY = """async (text) => {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const response = await fetch("/chat/say/", {
    method: "POST",
    headers: { "X-CSRFToken": token },
    body: new URLSearchParams({ text }),
  });
  return (await response.json()).chat;
}"""


LOGIN = """async () => {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  await fetch("/login/", { method: "POST", headers: { "X-CSRFToken": token } });
}"""


def in_a_thread(fn: Any) -> Any:
    """Run ``fn`` off this thread, where Playwright's event loop forbids the ORM."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: (fn(), connections.close_all())[0]).result()


def open_chat(tab: Any, live_server: Any) -> Any:
    tab.goto(live_server.url + "/chat/")
    tab.wait_for_function("() => window.statekit && window.statekit.page.id")
    return tab


def test_each_tab_has_its_own_chat_and_a_refresh_starts_afresh(live_server, page):
    first = open_chat(page, live_server)
    second = open_chat(page.context.new_page(), live_server)
    assert first.evaluate("statekit.page.id") != second.evaluate("statekit.page.id")
    assert first.evaluate(SAY, "hi") == ["hi"]
    assert second.evaluate(SAY, "yo") == ["yo"]
    assert first.evaluate(SAY, "again") == ["hi", "again"]
    first.reload()
    first.wait_for_function("() => window.statekit && window.statekit.page.id")
    assert first.evaluate(SAY, "new") == ["new"]
    assert second.evaluate(SAY, "still") == ["yo", "still"]


def test_forms_send_the_page_id(live_server, page):
    tab = open_chat(page, live_server)
    tab.evaluate(SAY, "before")
    tab.fill("#text", "typed")
    with tab.expect_navigation():
        tab.click("#send")
    assert '"chat": ["before", "typed"]' in tab.content()


def test_a_closed_page_ends_after_page_closed_ttl(live_server, page, settings):
    CLOSED.clear()
    settings.STATEKIT = {**settings.STATEKIT, "PAGE_CLOSED_TTL": 0.5}
    tab = open_chat(page, live_server)
    tab.evaluate(SAY, "bye")
    other = open_chat(page.context.new_page(), live_server)
    other.evaluate(SAY, "stay")
    tab.goto("about:blank")  # pagehide: statekit.js sends the close beacon
    deadline = time.monotonic() + 10
    while not CLOSED and time.monotonic() < deadline:
        time.sleep(0.3)
        in_a_thread(cleanup)
    assert CLOSED == [["bye"]]
    assert other.evaluate(SAY, "more") == ["stay", "more"]


def test_logging_out_closes_the_page_quietly(live_server, page, caplog):
    """The page a logout leaves sends its close beacon with the ended session's page id:
    answered quietly (INFO), with nothing above INFO in the logs (no security error)."""
    caplog.set_level(logging.INFO)
    tab = open_chat(page, live_server)
    tab.evaluate(LOGIN)
    open_chat(tab, live_server)  # login rotated the CSRF token: the page shows the new one
    assert tab.evaluate(SAY, "hi") == ["hi"]
    with tab.expect_navigation():
        tab.click("#logout")
    tab.wait_for_function("() => window.statekit && window.statekit.page.id")
    deadline = time.monotonic() + 10
    while not any("session has ended" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the close beacon of the logged-out page never came"
        tab.wait_for_timeout(200)
    assert [r.getMessage() for r in caplog.records if r.levelno > logging.INFO] == []
    assert tab.evaluate(SAY, "new") == ["new"]  # the new session's page works
