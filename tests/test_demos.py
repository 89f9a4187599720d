"""The seven demos of the example project, driven in real headless Chromium as a user would:
click, type, reload, a second tab, a second browser context, a browser restart.

The pages are served by daphne processes running the example project (tests/live_asgi.py) on
this test run's database, so the live demos get their websockets. Playwright runs in each
test, after the transactional database is set up and stopped before it is flushed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from example_project.demo.demos import DEMOS
from tests.browser import (  # noqa: F401 (fixture)
    COUNT_SSE_SWAPS,
    browser_fixture,
    persistent,
    sse_swapped,
    watch_errors,
)
from tests.conftest import needs
from tests.live_support import Server, process_env

pytestmark = [*needs("chromium"), pytest.mark.django_db(transaction=True)]

#: POST a score from the page with fetch, as many times as given, all at once.
SUBMIT_SCORES = """(scores) => {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  window.submitted = Promise.all(scores.map((score) => fetch("/scores/", {
    method: "POST",
    headers: { "X-CSRFToken": token },
    body: new URLSearchParams({ score }),
  }).then((response) => response.status)));
}"""


@pytest.fixture(scope="module")
def server(django_db_setup: Any) -> Iterator[Server]:
    """One daphne process for the module, on the test run's database."""
    with Server(process_env()) as running:
        yield running


@pytest.fixture(name="playwright")
def playwright_fixture(transactional_db: Any) -> Iterator[Any]:
    """Playwright, stopped before the database is flushed (its event loop forbids the ORM).
    The ``browser`` fixture of tests/browser.py launches Chromium with it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as started:
        yield started


@pytest.fixture
def open_tab() -> Iterator[Callable[[Any, str], Any]]:
    """``open_tab(context, url)``: a new tab of ``context`` showing ``url``. No uncaught
    error or console error may happen in any of them."""
    collected: list[list[str]] = []

    def opener(context: Any, url: str) -> Any:
        tab = context.new_page()
        collected.append(watch_errors(tab))
        tab.goto(url)
        return tab

    yield opener
    errors = [error for tab_errors in collected for error in tab_errors]
    assert errors == [], f"errors in the pages: {errors}"


def test_the_index_links_every_demo_and_each_shows_its_code(server, browser, open_tab):
    context = browser.new_context()
    tab = open_tab(context, server.url + "/")
    for demo in DEMOS.values():
        tab.get_by_role("link", name=demo.title).click()
        expect(tab.locator("h1")).to_have_text(demo.title)
        expect(tab.locator(".feature")).to_contain_text(demo.feature)
        code = tab.locator(".code pre")
        expect(code).to_have_count(len(demo.sources))
        for (_, source), shown in zip(demo.code, code.all(), strict=True):
            assert shown.text_content() == source
        tab.click("header a")
    context.close()


def test_visitor_counter_counts_each_load_live_in_every_tab(server, browser, open_tab):
    a = open_tab(browser.new_context(), server.url + "/visitors/")
    first = int(a.text_content("#visitors"))
    a.wait_for_function("() => statekit.live.status === 'open'")
    b = open_tab(browser.new_context(), server.url + "/visitors/")  # another browser
    expect(b.locator("#visitors")).to_have_text(str(first + 1))
    expect(a.locator("#visitors")).to_have_text(str(first + 1))  # live
    b.wait_for_function("() => statekit.live.status === 'open'")
    a.reload()
    expect(a.locator("#visitors")).to_have_text(str(first + 2))
    expect(b.locator("#visitors")).to_have_text(str(first + 2))
    a.context.close()
    b.context.close()


def add_to_cart(tab: Any, *items: str) -> None:
    tab.bring_to_front()  # the user switches to it (Chromium slows background tabs down)
    for item in items:
        tab.check(f"input[value='{item}']")
    with tab.expect_navigation():
        tab.click("#add")


def test_cart_is_shared_by_the_sessions_tabs_and_counted_by_on_change(server, browser, open_tab):
    context = browser.new_context()
    first = open_tab(context, server.url + "/cart/")
    second = open_tab(context, server.url + "/cart/")  # the same session
    expect(second.locator("#cart-count")).to_have_text("0")
    second.wait_for_function("() => statekit.live.status === 'open'")

    add_to_cart(first, "Milk", "Water")
    expect(first.locator("#cart-count")).to_have_text("2")
    expect(first.locator("#cart li")).to_have_text(["Milk", "Water"])
    expect(second.locator("#cart-count")).to_have_text("2")  # live, in the other tab
    expect(second.locator("#cart li")).to_have_text(["Milk", "Water"])

    add_to_cart(second, "Cereal")
    expect(first.locator("#cart-count")).to_have_text("3")
    expect(first.locator("#cart li")).to_have_text(["Milk", "Water", "Cereal"])
    first.reload()  # session state survives a refresh
    expect(first.locator("#cart li")).to_have_text(["Milk", "Water", "Cereal"])

    other = open_tab(browser.new_context(), server.url + "/cart/")  # another session
    expect(other.locator("#cart-count")).to_have_text("0")
    expect(other.locator("#cart li")).to_have_count(0)

    first.wait_for_function("() => statekit.live.status === 'open'")
    with second.expect_navigation():
        second.click("#empty")
    expect(second.locator("#cart-count")).to_have_text("0")
    expect(first.locator("#cart-count")).to_have_text("0")  # on_change saw the delete
    expect(first.locator("#cart li")).to_have_count(0)
    context.close()
    other.context.close()


def counter_shown(tab: Any) -> tuple[str, int]:
    """The id of the counter the page shows, once loaded, and its count."""
    expect(tab.locator("#counter-id")).to_have_text(re.compile(r"^[0-9a-f]{8}$"))
    return tab.text_content("#counter-id"), int(tab.text_content("#count"))


def refresh_until_closed(tab: Any, counter: str, timeout: float = 10) -> None:
    """Click "Refresh" on ``tab`` until its list of closed counters shows ``counter``."""
    deadline = time.monotonic() + timeout
    while not tab.locator(f"#closed li:has-text('{counter}')").count():
        assert time.monotonic() < deadline, f"counter {counter} was not closed"
        tab.click("#refresh")
        time.sleep(0.1)


def test_counter_page_resource_one_per_tab_closed_with_its_tab(server, browser, open_tab):
    """Gradio's guide: two tabs, two counters, each closed with its own tab."""
    context = browser.new_context()
    one = open_tab(context, server.url + "/counter/")
    two = open_tab(context, server.url + "/counter/")  # the same session, another page
    first, count = counter_shown(one)
    second, _ = counter_shown(two)
    assert first != second and count == 0
    for expected in ("1", "2"):
        one.click("#increment")
        expect(one.locator("#count")).to_have_text(expected)
    two.click("#increment")
    expect(two.locator("#count")).to_have_text("1")  # its own counter, not the first tab's

    two.goto("about:blank")  # the second tab closes: its beacon closes its counter only
    refresh_until_closed(one, second)
    assert not one.locator(f"#closed li:has-text('{first}')").count()
    one.click("#increment")
    expect(one.locator("#count")).to_have_text("3")
    assert counter_shown(one)[0] == first

    one.reload()  # a new page load: a new counter; the old page's beacon closes the old one
    third, count = counter_shown(one)
    assert third not in (first, second) and count == 0
    refresh_until_closed(one, first)
    expect(one.locator(f"#closed li:has-text('{first}')")).to_have_text(
        re.compile(rf"^{first}: closed with count 3 at ")
    )

    four = open_tab(context, server.url + "/counter/")
    fourth, _ = counter_shown(four)
    other = open_tab(browser.new_context(), server.url + "/counter/")  # another session
    kept, _ = counter_shown(other)
    with one.expect_navigation():
        one.click("#end-session")  # the session ends: the counters of all its tabs close
    fifth, count = counter_shown(one)
    assert fifth not in (first, second, third, fourth) and count == 0
    refresh_until_closed(one, third)
    refresh_until_closed(one, fourth)
    assert not one.locator(f"#closed li:has-text('{kept}')").count()
    context.close()
    other.context.close()


def test_username_and_password_survive_a_refresh_and_a_browser_restart(
    server, playwright, tmp_path, open_tab
):
    profile = tmp_path / "profile"
    url = server.url + "/credentials/"
    context = persistent(playwright, profile)
    tab = open_tab(context, url)
    username, password = tab.locator("#username"), tab.locator("#password")
    expect(username).to_have_value("")
    username.fill("alice")  # saved by the page as it is typed
    password.fill("correct horse")
    tab.click("#save")  # saved by the server, encrypted
    expect(tab.locator("#note")).to_have_text("Password saved.")
    stored = tab.evaluate("() => localStorage.getItem('statekit:password')")
    assert '"e":' in stored and "horse" not in stored  # ciphertext only
    expect(tab.locator("#storage")).to_contain_text(stored)

    tab.reload()
    expect(username).to_have_value("alice")
    expect(password).to_have_value("correct horse")
    expect(tab.locator("[data-statekit-value='username']")).to_have_text("alice")
    context.close()

    context = persistent(playwright, profile)  # the same profile: a browser restart
    tab = open_tab(context, url)
    username, password = tab.locator("#username"), tab.locator("#password")
    expect(username).to_have_value("alice")
    expect(password).to_have_value("correct horse")

    tab.click("#generate")  # written by the server into this browser
    expect(username).to_have_value(re.compile(r"^user-[0-9a-f]{8}$"))
    expect(password).not_to_have_value("correct horse")
    generated = username.input_value(), password.input_value()
    tab.reload()
    expect(username).to_have_value(generated[0])
    expect(password).to_have_value(generated[1])

    tab.click("#forget")
    tab.reload()
    expect(username).to_have_value("")
    expect(password).to_have_value("")
    context.close()


def submit_score(tab: Any, score: int) -> None:
    tab.fill("#id_score", str(score))
    with tab.expect_navigation():
        tab.click("#submit")


def test_everyone_sees_the_top_3_scores_live(server, browser, open_tab):
    a = open_tab(browser.new_context(), server.url + "/scores/")
    b = open_tab(browser.new_context(), server.url + "/scores/")
    before = int(a.text_content("#count"))
    b.wait_for_function("() => statekit.live.status === 'open'")
    for score in (700_001, 700_003, 700_002, 700_000):
        submit_score(a, score)
    expect(a.locator("#top li")).to_have_text(["700003", "700002", "700001"])
    expect(b.locator("#top li")).to_have_text(["700003", "700002", "700001"])  # live
    expect(b.locator("#count")).to_have_text(str(before + 4))

    a.wait_for_function("() => statekit.live.status === 'open'")
    submit_score(b, 800_000)
    expect(a.locator("#top li")).to_have_text(["800000", "700003", "700002"])
    a.context.close()
    b.context.close()


def test_concurrent_submissions_to_two_server_processes_lose_no_score(server, browser, open_tab):
    with Server(process_env()) as other:
        tabs = [
            open_tab(browser.new_context(), url + "/scores/")
            for url in (server.url, other.url, server.url, other.url)
        ]
        before = int(tabs[0].text_content("#count"))
        batches = [list(range(900_000 + i, 900_040, 4)) for i in range(4)]  # 40 scores
        for tab, batch in zip(tabs, batches, strict=True):
            tab.evaluate(SUBMIT_SCORES, batch)  # started, not awaited: all at once
        for tab, batch in zip(tabs, batches, strict=True):
            assert tab.evaluate("() => window.submitted") == [200] * len(batch)
        tabs[1].reload()
        expect(tabs[1].locator("#count")).to_have_text(str(before + 40))
        expect(tabs[1].locator("#top li")).to_have_text(["900039", "900038", "900037"])
        for tab in tabs:
            tab.context.close()


def say(tab: Any, message: str) -> None:
    tab.bring_to_front()
    tab.fill("#id_message", message)
    tab.click("#send")
    expect(tab.locator("#current")).to_have_text(message)


def test_each_tab_keeps_its_own_chat_and_a_refresh_starts_afresh(server, browser, open_tab):
    context = browser.new_context()
    first = open_tab(context, server.url + "/chat/")
    second = open_tab(context, server.url + "/chat/")
    say(first, "hello")
    say(first, "how are you?")
    expect(first.locator("#previous li")).to_have_text(["hello"])
    say(second, "another tab")
    expect(second.locator("#previous li")).to_have_count(0)  # its own history
    say(first, "still here")
    expect(first.locator("#previous li")).to_have_text(["how are you?", "hello"])

    first.reload()
    say(first, "after the refresh")
    expect(first.locator("#previous li")).to_have_count(0)  # a new page: a new history
    say(second, "and again")
    expect(second.locator("#previous li")).to_have_text(["another tab"])
    context.close()


def vote(tab, option: str) -> None:
    """Click the Vote button of ``option`` (a form the stream swapped in; htmx posts it)."""
    tab.bring_to_front()  # the user switches to it (Chromium slows background tabs down)
    row = tab.locator("#results li").filter(has=tab.locator(".option", has_text=option))
    row.get_by_role("button", name="Vote").click()


def shown_votes(tab, rows: list[tuple[str, int]]) -> None:
    expect(tab.locator("#results .option")).to_have_text([option for option, _ in rows])
    expect(tab.locator("#results .count")).to_have_text([str(count) for _, count in rows])


def test_the_poll_is_live_in_every_tab_with_htmx(server, browser, open_tab):
    """htmx posts the votes and the question; every page is sent what the server renders."""
    contexts = [browser.new_context() for _ in range(2)]
    for context in contexts:
        context.add_init_script(COUNT_SSE_SWAPS)
    a, b = (open_tab(context, server.url + "/poll/") for context in contexts)
    for tab in (a, b):
        sse_swapped(tab, 2)  # the question and the votes as they are now: the stream is open
    a.fill("#add input", "Cocoa")
    a.click("#add button")
    shown_votes(a, [("Cocoa", 1)])
    shown_votes(b, [("Cocoa", 1)])  # live, in another browser
    expect(a.locator("#add input")).to_have_value("")

    vote(b, "Cocoa")
    shown_votes(a, [("Cocoa", 2)])
    b.fill("#ask input", "Tea, coffee or cocoa?")
    b.click("#ask button")
    expect(a.locator("#question")).to_have_text("Tea, coffee or cocoa?")
    a.reload()  # the page starts with what the stream sent
    expect(a.locator("#question")).to_have_text("Tea, coffee or cocoa?")
    shown_votes(a, [("Cocoa", 2)])
    for context in contexts:
        context.close()
