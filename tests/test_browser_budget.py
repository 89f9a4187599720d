"""Browser state never makes a request fail: many states at their max_bytes, non-ASCII,
signed and encrypted, through fetch, XHR (async and sync) and a form, against Daphne with a
strict header limit (tests/budget_settings.py), in real Chromium. Each request says how many
header bytes statekit added; they are printed, and must stay within the 2 KB budget."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from statekit.models import StateValue
from tests.browser import (  # noqa: F401  (fixtures: browser, page, playwright)
    browser_fixture,
    page_fixture,
    playwright_fixture,
)
from tests.conftest import needs
from tests.live_support import Server, process_env

pytestmark = [*needs("chromium"), pytest.mark.django_db(transaction=True)]

BUDGET = 2048  # bytes of X-Statekit-* header lines per request, whatever is stored

PLAIN = {
    "budget.big0": "€" * 1364,  # 3-byte UTF-8: 4094 bytes of JSON
    "budget.big1": "😀" * 1023,  # 4-byte UTF-8 (a surrogate pair in JavaScript)
    "budget.big2": "é" * 2047,  # 4096 bytes, the limit exactly
    "budget.big3": "a" * 4094,
    "budget.big4": {"ключ": ["значение"] * 180},
    "budget.big5": '"\\' * 1023,  # every character escaped in JSON
    "budget.small0": "ok",
    "budget.small2": "ü",
    "budget.falsy": 0,
}
SEALED = {"budget.signed": "€" * 1364, "budget.secret": "漢" * 1364}
EXPECTED = {**PLAIN, **SEALED, "budget.small1": "none"}

FILL = """async ([plain, sealed]) => {
  for (const [name, value] of Object.entries(plain)) statekit.browser.set(name, value);
  await fetch("/budget/write/", { method: "POST", body: JSON.stringify(sealed) });
}"""

FETCH = """async (method) => {
  const response = await fetch("/budget/echo/", { method });
  return [response.status, await response.text()];
}"""

XHR = """(sync) => new Promise((resolve) => {
  const xhr = new XMLHttpRequest();
  xhr.open("GET", "/budget/echo/", !sync);
  xhr.onloadend = () => resolve([xhr.status, xhr.responseText]);
  xhr.send();
})"""


@pytest.fixture
def server(live_server: Any) -> Any:
    """Daphne with the strict header limit. Tests name it before ``page``, so the page is
    closed before the server stops (a page left open would retry a refused connection)."""
    env = process_env(DJANGO_SETTINGS_MODULE="tests.budget_settings")
    with Server(env) as started:
        yield started


def answer(result: list[Any], via: str) -> dict[str, Any]:
    status, text = result
    assert status == 200, f"{via}: {status} {text[:200]}"
    found = json.loads(text)
    print(f"{via}: statekit added {found['added']} bytes of headers")
    assert found["values"] == EXPECTED, via
    assert found["added"] <= BUDGET, via
    return found


def filled(page: Any, server: Any) -> Any:
    page.goto(server.url + "/budget/")
    page.wait_for_function("() => window.statekit && window.statekit.browser")
    page.evaluate(FILL, [PLAIN, SEALED])
    stored = page.evaluate("() => JSON.stringify(localStorage).length")
    print(f"localStorage holds {stored} characters of browser state")
    return page


def test_every_request_succeeds_and_reads_every_value(server, page):
    filled(page, server)
    answer(page.evaluate(FETCH, "GET"), "fetch GET")
    answer(page.evaluate(FETCH, "POST"), "fetch POST")
    answer(page.evaluate(XHR, False), "XHR")
    answer(page.evaluate(XHR, True), "synchronous XHR")
    page.reload()  # a new page: its first request uploads again
    page.wait_for_function("() => window.statekit && window.statekit.browser")
    answer(page.evaluate(FETCH, "GET"), "fetch GET after a reload")
    page.click("#submit")  # a POST form carries every entry in its body
    answer([200, page.locator("body").inner_text()], "form")


def test_a_bundle_the_server_lost_reads_defaults_once_then_is_uploaded_again(server, page):
    filled(page, server)
    answer(page.evaluate(FETCH, "GET"), "fetch GET")
    with ThreadPoolExecutor(1) as thread:  # the ORM refuses Playwright's thread
        lost = thread.submit(lambda: StateValue.objects.filter(scope="browser").delete()[0])
        assert lost.result() >= 1
    status, text = page.evaluate(FETCH, "GET")
    assert status == 200  # never an error: the bundled states read their defaults
    values = json.loads(text)["values"]
    assert values["budget.small0"] == "ok"  # inline: still there
    assert values["budget.big3"] == ""  # bundled: its default, this once
    answer(page.evaluate(FETCH, "GET"), "fetch GET after the bundle was lost")


WRITE_FETCH = """async (plain) => {
  localStorage.clear();
  await fetch("/budget/write/", { method: "POST", body: JSON.stringify(plain) });
  return Object.fromEntries(Object.keys(plain).map((n) => [n, statekit.browser.get(n)]));
}"""

WRITE_XHR = """([plain, sync]) => new Promise((resolve) => {
  localStorage.clear();
  const xhr = new XMLHttpRequest();
  const seen = (when) => () => {
    if (when !== "load" && xhr.readyState !== 4) return;
    const found = Object.fromEntries(Object.keys(plain).map((n) => [n, statekit.browser.get(n)]));
    if (when === "load") resolve([xhr.status, found, xhr.responseText]);
  };
  xhr.onreadystatechange = seen("readystatechange");
  xhr.open("POST", "/budget/write/", !sync);
  xhr.addEventListener("load", seen("load"));
  xhr.send(JSON.stringify(plain));
})"""


def test_large_writes_reach_the_page_before_its_request_resolves(server, page):
    """The server writes 9 states (about 20 KB): the response headers stay small, and the
    page's code sees every value when its fetch resolves or its XHR loads."""
    added: list[int] = []

    def measure(response: Any) -> None:
        if "/budget/write/" in response.url:
            lines = [
                h for h in response.headers_array() if h["name"].lower().startswith("x-statekit-")
            ]
            added.append(sum(len(h["name"]) + len(h["value"]) + 4 for h in lines))

    page.on("response", measure)
    page.goto(server.url + "/budget/")
    page.wait_for_function("() => window.statekit && window.statekit.browser")
    assert page.evaluate(WRITE_FETCH, PLAIN) == PLAIN
    for sync in (False, True):
        status, found, text = page.evaluate(WRITE_XHR, [PLAIN, sync])
        assert (status, text) == (200, "{}") and found == PLAIN, f"sync={sync}"
    print(f"statekit added {added} bytes of response headers for 20 KB of writes")
    assert len(added) == 3 and max(added) <= BUDGET
