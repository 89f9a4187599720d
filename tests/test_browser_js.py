"""statekit.js in real headless Chromium, against the live test server (tests/browser_app).

Most pages are served under a strict Content-Security-Policy with a nonce, and the ``page``
fixture fails a test on any console error, so these tests also show that statekit.js runs
under CSP without violations.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from django.core.signals import request_started
from playwright.sync_api import expect

from statekit.signals import browser_state_rejected
from tests.browser import (  # noqa: F401  (fixtures: browser, page, playwright)
    browser_fixture,
    page_fixture,
    persistent,
    playwright_fixture,
    watch_errors,
)
from tests.conftest import needs

pytestmark = [*needs("chromium"), pytest.mark.urls("tests.browser_app.urls")]

FALSY = [0, "", False, None, [], {}]

WRITE = """async (body) => {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const response = await fetch("/write/", {
    method: "POST",
    headers: { "X-CSRFToken": token, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return response.json();
}"""

ATTEMPT = """([call, ...args]) => {
  try {
    return ["ok", statekit.browser[call](...args)];
  } catch (error) {
    return [error.name, error.message];
  }
}"""

EDIT = """([key, field, find, replace]) => {
  const entry = JSON.parse(localStorage.getItem(key));
  const old = entry[field];
  entry[field] = typeof old === "number" ? old - find : old.replace(find, replace);
  localStorage.setItem(key, JSON.stringify(entry));
}"""


def open_page(tab: Any, live_server: Any, path: str) -> Any:
    tab.goto(live_server.url + path)
    tab.wait_for_function("() => window.statekit && window.statekit.browser")
    return tab


def get(tab: Any, name: str) -> Any:
    return tab.evaluate("(name) => statekit.browser.get(name)", name)


def js_set(tab: Any, name: str, value: Any) -> None:
    tab.evaluate("([name, value]) => statekit.browser.set(name, value)", [name, value])


def attempt(tab: Any, call: str, *args: Any) -> list[Any]:
    """``statekit.browser[call](*args)`` in the page: ["ok", result] or [error name, message]."""
    return tab.evaluate(ATTEMPT, [call, *args])


def echo(tab: Any) -> dict[str, Any]:
    """What the server reads of each test state from a fetch() of this page."""
    return tab.evaluate("async () => (await fetch('/echo/')).json()")


def server_write(tab: Any, values: dict[str, Any]) -> None:
    """The server writes ``values`` (by state name) in answer to a fetch() of this page."""
    tab.evaluate(WRITE, {"set": values})


def shown(tab: Any, name: str) -> Any:
    """The {% statekit_value %} element of ``name`` on the values page."""
    return tab.locator(f"[id='{name}'] [data-statekit-value]")


@pytest.fixture
def rejections():
    sent: list[dict[str, Any]] = []

    def receiver(sender, **kwargs):
        sent.append(kwargs)

    browser_state_rejected.connect(receiver)
    yield sent
    browser_state_rejected.disconnect(receiver)


def test_username_and_password_survive_a_reload_and_a_browser_restart(
    live_server, playwright, tmp_path
):
    profile = tmp_path / "profile"
    context = persistent(playwright, profile)
    tab = context.pages[0]
    errors = watch_errors(tab)
    open_page(tab, live_server, "/creds/")
    username, password = tab.locator("#username"), tab.locator("#password")
    expect(username).to_have_value("")

    # "Generate randomly": the server writes; the fetch response brings the value.
    tab.click("#generate")
    expect(username).to_have_value(re.compile(r"^user-[0-9a-f]{8}$"))
    generated = password.input_value()
    assert len(generated) >= 12
    # Typed by the user: statekit.browser.set on each input.
    username.fill("alice")
    tab.reload()
    expect(username).to_have_value("alice")
    expect(password).to_have_value(generated)
    expect(tab.locator("[data-statekit-key='username']")).to_have_text("alice")
    assert echo(tab)["test.creds"] == {"username": "alice", "password": generated}
    context.close()

    context = persistent(playwright, profile)  # The same profile: a browser restart.
    tab = context.pages[0]
    errors += watch_errors(tab)
    open_page(tab, live_server, "/creds/")
    expect(tab.locator("#username")).to_have_value("alice")
    expect(tab.locator("#password")).to_have_value(generated)
    context.close()
    assert not errors


def test_two_tabs_stay_in_sync(live_server, browser):
    context = browser.new_context()
    one, two = context.new_page(), context.new_page()
    errors = watch_errors(one) + watch_errors(two)
    for tab in (one, two):
        open_page(tab, live_server, "/values/")
    two.evaluate(
        """() => {
          window.seen = [];
          statekit.browser.subscribe("test.note", (value, info) => seen.push([value, info.source]));
        }"""
    )
    js_set(one, "test.note", "from tab one")
    expect(shown(two, "test.note")).to_have_text("from tab one")
    assert two.evaluate("seen") == [["from tab one", "tab"]]
    assert get(two, "test.note") == "from tab one"

    two.evaluate("() => statekit.browser.remove('test.note')")
    expect(shown(one, "test.note")).to_have_text("")
    assert get(one, "test.note") == ""

    server_write(one, {"test.theme": "dark"})  # A server write in one tab reaches the other.
    expect(shown(one, "test.theme")).to_have_text("dark")
    expect(shown(two, "test.theme")).to_have_text("dark")
    context.close()
    assert not errors


def test_falsy_values_are_stored_and_read_back_exactly(live_server, page):
    open_page(page, live_server, "/values/")
    assert get(page, "test.falsy") == "fallback"
    for value in FALSY:
        js_set(page, "test.falsy", value)
        page.reload()
        got = get(page, "test.falsy")
        assert (got, type(got)) == (value, type(value))
        sent = echo(page)["test.falsy"]
        assert (sent, type(sent)) == (value, type(value))  # The server reads it too.
    for value in FALSY:  # Written by the server.
        server_write(page, {"test.falsy": value})
        got = get(page, "test.falsy")
        assert (got, type(got)) == (value, type(value))
    page.evaluate("() => statekit.browser.remove('test.falsy')")
    assert get(page, "test.falsy") == "fallback"
    assert echo(page)["test.falsy"] == "fallback"


def test_a_tampered_signed_value_is_rejected(live_server, page, caplog, rejections):
    open_page(page, live_server, "/values/")
    server_write(page, {"test.badge": "gold"})
    assert get(page, "test.badge") == "gold"  # Signed values are readable...
    assert attempt(page, "set", "test.badge", "root") == [
        "StatekitError",
        'statekit: "test.badge" is signed: only the server can write it',
    ]  # ...but only the server writes them.
    assert echo(page)["test.badge"] == "gold"

    page.evaluate(EDIT, ["statekit:test.badge", "s", '"gold"', '"root"'])
    assert get(page, "test.badge") == "root"  # The page believes it; the server does not.
    with caplog.at_level(logging.WARNING, "statekit.browser"):
        assert echo(page)["test.badge"] == "none"
    assert [r["reason"] for r in rejections] == ["tampered"]
    assert "'test.badge': the value from the browser is refused (tampered)" in caplog.text


def test_an_encrypted_value_is_unreadable_in_local_storage(live_server, page, rejections):
    open_page(page, live_server, "/values/")
    secret = {"api_key": "sk-live-0123456789", "owner": "alice"}
    server_write(page, {"test.secret": secret})
    stored = page.evaluate("() => JSON.stringify(Object.entries(localStorage))")
    assert "statekit:test.secret" in stored
    for plain in ("sk-live", "0123456789", "api_key", "alice"):
        assert plain not in stored
    assert "sk-live" not in page.content()
    assert attempt(page, "get", "test.secret") == [
        "StatekitError",
        'statekit: "test.secret" is encrypted: only the server can read it',
    ]
    assert echo(page)["test.secret"] == secret  # The server reads it.
    page.reload()
    assert echo(page)["test.secret"] == secret

    page.evaluate(EDIT, ["statekit:test.secret", "e", "A", "B"])
    assert echo(page)["test.secret"] is None
    assert [r["reason"] for r in rejections] == ["tampered"]


def test_an_xss_payload_stored_as_a_value_renders_inert(live_server, page):
    payload = '<img src=x onerror="window.pwned=1"></script><script>window.pwned=2</script>'
    # A page without CSP: only statekit's escaping stands between the value and the DOM.
    open_page(page, live_server, "/unprotected/")
    js_set(page, "test.note", payload)
    page.reload()
    expect(shown(page, "test.note")).to_have_text(payload)
    # Written by the server and delivered in the page itself (config and rendered value).
    open_page(page, live_server, "/unprotected/form/")
    page.fill("#theme", payload)
    page.click("#render")
    page.wait_for_load_state()
    expect(page.locator("#theme-shown span")).to_have_text(payload)
    assert get(page, "test.theme") == payload
    open_page(page, live_server, "/unprotected/")
    expect(shown(page, "test.theme")).to_have_text(payload)
    assert page.evaluate("window.pwned") is None
    assert page.locator("img").count() == 0


def test_a_post_form_sends_the_state_and_its_writes_cross_a_redirect(live_server, page):
    open_page(page, live_server, "/form/")
    js_set(page, "test.theme", "blue")
    page.fill("#theme", "dark")
    page.click("#redirect")
    page.wait_for_url("**/form/?before=blue")  # The server read the page's value...
    expect(page.locator("#before")).to_have_text("blue")
    expect(page.locator("#theme-shown span")).to_have_text("dark")  # ...and wrote the new one.
    assert get(page, "test.theme") == "dark"
    assert "statekit_browser" not in [c["name"] for c in page.context.cookies()]  # Carried, gone.

    page.fill("#theme", "light")
    page.click("#render")  # Answered by a page, without a redirect.
    expect(page.locator("#before")).to_have_text("dark")
    expect(page.locator("#theme-shown span")).to_have_text("light")
    assert get(page, "test.theme") == "light"


def test_writes_after_the_page_rendered_or_before_a_redirect_arrive(live_server, page):
    open_page(page, live_server, "/late/")  # Added to the page by the middleware.
    expect(shown(page, "test.theme")).to_have_text("late")
    assert get(page, "test.theme") == "late"
    # A fetch answered by a redirect: the writes cross it in a cookie, then come back in the
    # header of the response fetch() follows to.
    sent = page.evaluate(WRITE, {"set": {"test.theme": "redirected"}, "then": "redirect"})
    assert sent["test.theme"] == "redirected"
    assert get(page, "test.theme") == "redirected"
    assert "statekit_browser" not in [c["name"] for c in page.context.cookies()]


def test_htmx_requests_send_the_state_and_apply_writes(live_server, page):
    open_page(page, live_server, "/htmx/")
    page.wait_for_function("() => window.htmx")
    js_set(page, "test.theme", "blue")
    page.click("#save")
    expect(page.locator("#before")).to_have_text("blue")
    expect(page.locator("#theme-shown span")).to_have_text("from-htmx")
    assert get(page, "test.theme") == "from-htmx"


def test_xhr_applies_writes_before_its_load_handlers(live_server, page):
    open_page(page, live_server, "/values/")
    js_set(page, "test.note", "sent by XHR")
    seen = page.evaluate(
        """() => new Promise((resolve) => {
          const xhr = new XMLHttpRequest();
          xhr.open("POST", "/write/");
          const token = document.querySelector('meta[name="csrf-token"]').content;
          xhr.setRequestHeader("X-CSRFToken", token);
          xhr.onload = () => resolve(statekit.browser.get("test.theme"));
          xhr.send(JSON.stringify({ set: { "test.theme": "from-xhr" } }));
        })"""
    )
    assert seen == "from-xhr"
    note = page.evaluate(
        """() => new Promise((resolve) => {
          const xhr = new XMLHttpRequest();
          xhr.open("GET", "/echo/");
          xhr.responseType = "json";
          xhr.onload = () => resolve(xhr.response["test.note"]);
          xhr.send();
        })"""
    )
    assert note == "sent by XHR"


def test_cross_origin_requests_carry_no_state(live_server, page):
    seen: list[dict[str, Any]] = []

    def record(sender, environ, **kwargs):
        seen.append({"path": environ["PATH_INFO"], "sent": environ.get("HTTP_X_STATEKIT_BROWSER")})

    open_page(page, live_server, "/unprotected/")  # No CSP: it would refuse the other origin.
    js_set(page, "test.note", "private")
    other = live_server.url.replace("localhost", "127.0.0.1")  # Another origin, same server.
    assert other != live_server.url
    request_started.connect(record)
    try:
        page.evaluate("async (url) => { await fetch(url, { mode: 'no-cors' }); }", other + "/echo/")
        page.evaluate("async () => { await fetch('/echo/'); }")
    finally:
        request_started.disconnect(record)
    cross, same = (s["sent"] for s in seen if s["path"] == "/echo/")
    assert cross is None
    assert '"private"' in same


def test_a_value_older_than_max_age_reads_the_default(live_server, page):
    open_page(page, live_server, "/values/")
    js_set(page, "test.fresh", "recent")
    assert get(page, "test.fresh") == "recent"
    assert echo(page)["test.fresh"] == "recent"
    page.evaluate(EDIT, ["statekit:test.fresh", "t", 61_000, None])  # Written 61 s earlier.
    assert get(page, "test.fresh") == "expired"
    assert page.evaluate("() => localStorage.getItem('statekit:test.fresh')") is None
    assert echo(page)["test.fresh"] == "expired"


def test_the_api_refuses_what_it_cannot_store_with_clear_errors(live_server, page):
    open_page(page, live_server, "/values/")
    prefix = "statekit: "
    assert attempt(page, "get", "nope") == [
        "StatekitError",
        prefix + 'no BrowserState named "nope" is declared on the server',
    ]
    assert attempt(page, "set", "test.small", "x" * 70) == [
        "StatekitError",
        prefix + 'the value of "test.small" is 72 bytes encoded, over its limit of 64 bytes; '
        "nothing was saved",
    ]
    name, message = page.evaluate(
        """() => {
          try { statekit.browser.set("test.note", { when: undefined }); }
          catch (error) { return [error.name, error.message]; }
        }"""
    )
    assert (name, message) == (
        "StatekitError",
        prefix + '"test.note" cannot store this value: undefined is not JSON',
    )
    name, message = page.evaluate(
        "() => { try { statekit.browser.set('test.note', NaN); } "
        "catch (e) { return [e.name, e.message]; } }"
    )
    assert message == prefix + '"test.note" cannot store this value: NaN is not a JSON number'
    assert get(page, "test.small") == "" and get(page, "test.note") == ""  # Nothing saved.


def test_a_full_local_storage_gives_a_clear_error_and_the_page_goes_on(live_server, page):
    open_page(page, live_server, "/values/")
    js_set(page, "test.note", "kept")
    page.evaluate(
        """() => {
          let size = 1 << 20, i = 0;
          while (size >= 1) {
            try { localStorage.setItem(`filler-${i++}`, "x".repeat(size)); }
            catch { size = Math.floor(size / 2); }
          }
        }"""
    )
    assert attempt(page, "set", "test.note", "y" * 60) == [
        "StatekitError",
        'statekit: localStorage is full: "test.note" was not saved',
    ]
    assert get(page, "test.note") == "kept"
    assert echo(page)["test.note"] == "kept"


def test_without_local_storage_the_page_works_with_defaults(live_server, browser):
    """A sandboxed page (opaque origin): localStorage throws on every access."""
    tab = browser.new_page()
    errors = watch_errors(tab)
    open_page(tab, live_server, "/sandboxed/")
    assert (
        tab.evaluate(
            "() => { try { localStorage; return 'available'; } catch { return 'unavailable'; } }"
        )
        == "unavailable"
    )
    assert get(tab, "test.note") == ""
    assert get(tab, "test.falsy") == "fallback"
    name, message = attempt(tab, "set", "test.note", "x")
    assert name == "StatekitError"
    assert message.startswith("statekit: localStorage is unavailable")
    expect(shown(tab, "test.theme")).to_have_text("light")
    tab.close()
    assert not errors


def test_statekit_js_runs_under_a_strict_csp(live_server, page):
    response = page.goto(live_server.url + "/values/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'nonce-" in policy and "unsafe-inline" not in policy
    page.wait_for_function("() => window.statekit && window.statekit.browser")
    nonce = page.evaluate("() => document.querySelector('script[src*=statekit]').nonce")
    assert nonce and f"'nonce-{nonce}'" in policy
    # Any CSP violation would be a console error, which fails the test (the page fixture).
