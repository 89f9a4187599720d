"""Live state in real Chromium, served by daphne processes running the example project:
two browsers watch the visitor counter; a page reconnects and resyncs after its server comes
back; and, on channels-redis, a write through one server process (or a management command)
reaches a browser connected to another."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.browser import launch_options, watch_errors
from tests.conftest import needs
from tests.live_support import (  # noqa: F401  (fixture: channels_redis_prefix)
    WATCH_VISITORS,
    Server,
    channels_redis_prefix_fixture,
    process_env,
    run_command,
    seen,
    visit,
)

pytestmark = [*needs("chromium"), pytest.mark.django_db(transaction=True)]

INCR = "from example_project.demo.state import visitors; visitors.incr({})"
REFUSED = """() => new Promise((resolve) => {
  statekit.watch("no-such-state", () => resolve("called"), {
    onError: (error) => resolve([error.code, error.name]),
  });
})"""


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_options())
        try:
            yield browser
        finally:
            browser.close()


def shown(page: Any) -> int:
    return int(page.text_content("#visitors"))


def test_two_browsers_see_each_others_visits():
    from playwright.sync_api import expect

    with Server(process_env()) as server, chromium() as browser:
        a = browser.new_context().new_page()
        b = browser.new_context().new_page()
        errors = watch_errors(a) + watch_errors(b)
        a.goto(server.url + "/visitors/")
        first = shown(a)
        assert a.evaluate(WATCH_VISITORS) == first

        b.goto(server.url + "/visitors/")  # b's visit, live in a
        assert shown(b) == first + 1
        b.evaluate(WATCH_VISITORS)
        seen(a, first + 1)
        expect(a.locator("#visitors")).to_have_text(str(first + 1))

        a.reload()  # a's visit, live in b
        assert shown(a) == first + 2
        seen(b, first + 2)
        expect(b.locator("#visitors")).to_have_text(str(first + 2))
        assert a.evaluate(REFUSED) == ["refused", "StatekitError"]
        assert errors == []


def test_a_page_reconnects_and_resyncs_when_its_server_comes_back():
    from playwright.sync_api import expect

    env = process_env()
    with Server(env) as server, chromium() as browser:
        page = browser.new_page()
        page.goto(server.url + "/visitors/")
        first = shown(page)
        page.evaluate(WATCH_VISITORS)

        server.stop()
        page.wait_for_function("() => statekit.live.status !== 'open'")
        run_command(env, INCR.format(5))  # meanwhile: no server, nobody to tell
        server.start().wait()

        seen(page, first + 5, "value", timeout=20_000)  # reconnected, watching again
        expect(page.locator("#visitors")).to_have_text(str(first + 5))
        assert visit(server.url + "/visitors") == first + 6
        seen(page, first + 6)  # and live again


class TestTwoServerProcessesOnChannelsRedis:
    pytestmark = needs("redis")

    def test_a_write_through_one_reaches_a_browser_on_the_other(self, channels_redis_prefix):
        from playwright.sync_api import expect

        env = process_env(STATEKIT_TEST_CHANNELS_PREFIX=channels_redis_prefix)
        one, other = Server(env).start(), Server(env).start()
        try:
            one.wait()
            other.wait()
            with chromium() as browser:
                page = browser.new_page()
                page.goto(other.url + "/visitors/")
                before = shown(page)
                page.evaluate(WATCH_VISITORS)

                # a write in the other server process
                assert visit(one.url + "/visitors") == before + 1
                seen(page, before + 1)
                expect(page.locator("#visitors")).to_have_text(str(before + 1))

                run_command(env, INCR.format(1))  # a management command: a third process
                seen(page, before + 2)
                expect(page.locator("#visitors")).to_have_text(str(before + 2))
        finally:
            one.stop()
            other.stop()
