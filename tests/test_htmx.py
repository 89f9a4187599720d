"""htmx's SSE extension on statekit's event streams, in real Chromium (htmx 2.0 and
htmx-ext-sse 2.2, as the example project ships them in demo/static/demo/vendor/).

uvicorn with two worker processes serves the example project without Channels
(tests/sse_asgi.py), on Redis (cache) and on PostgreSQL (db). Two pages: one of the test's
own on statekit's endpoint (``?format=html``: each value as text), and the poll demo, whose
stream is ``events_view(render=...)`` (each value rendered by a template). A write from
another process, and votes posted by htmx to either worker, are swapped into both; values made
to run script when they are read as markup arrive as text.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser import COUNT_SSE_SWAPS, sse_swapped, watch_errors
from tests.live_support import run_command
from tests.test_demos import shown_votes, vote
from tests.test_live_browser import chromium
from tests.test_sse import UVICORN_CHROMIUM, two_workers_fixture  # noqa: F401 (fixture)

#: Run as script if it were ever read as markup.
HOSTILE = '<img src=x onerror="window.pwned = true">'

#: The test's own page, answered by Playwright at a URL of the server (same origin): htmx's
#: SSE extension on statekit's own endpoint, each value as escaped text.
TEXT_PAGE = """<!doctype html>
<html><head>
<script src="/static/demo/vendor/htmx.min.js"></script>
<script src="/static/demo/vendor/sse.min.js"></script>
</head>
<body hx-ext="sse"
      sse-connect="/statekit/events/?watch=global:poll_question&amp;watch=global:poll_votes&amp;format=html">
  <h1 id="question" sse-swap="global:poll_question">not yet</h1>
  <p id="votes" sse-swap="global:poll_votes">not yet</p>
</body></html>"""

WRITE = (
    "from example_project.demo.state import poll_question, poll_votes; "
    "poll_question.set({question!r}); poll_votes.set({votes!r})"
)


@pytest.mark.parametrize("two_workers", UVICORN_CHROMIUM, indirect=True)
def test_htmx_sse_swaps_in_what_any_process_writes_as_text_or_as_a_fragment(two_workers):
    server, env = two_workers
    with chromium() as browser:
        contexts = [browser.new_context() for _ in range(2)]
        for context in contexts:
            context.add_init_script(COUNT_SSE_SWAPS)
        text, demo = (context.new_page() for context in contexts)
        errors = watch_errors(text) + watch_errors(demo)
        text.route(server.url + "/htmx-text/", lambda route: route.fulfill(body=TEXT_PAGE))
        text.goto(server.url + "/htmx-text/")
        demo.goto(server.url + "/poll/")
        for tab in (text, demo):
            sse_swapped(tab, 2)  # both values as they are now: the stream is subscribed

        votes = {HOSTILE: 2, "Tea": 1}
        run_command(env, WRITE.format(question=HOSTILE, votes=votes))  # another process
        expect(text.locator("#question")).to_have_text(HOSTILE)
        expect(text.locator("#votes")).to_have_text(json.dumps(votes, separators=(",", ":")))
        expect(demo.locator("#question")).to_have_text(HOSTILE)
        shown_votes(demo, [(HOSTILE, 2), ("Tea", 1)])

        vote(demo, "Tea")  # posted by htmx to either worker: both pages are sent the change
        shown_votes(demo, [(HOSTILE, 2), ("Tea", 2)])
        expect(text.locator("#votes")).to_have_text(
            json.dumps({HOSTILE: 2, "Tea": 2}, separators=(",", ":"))
        )
        vote(demo, HOSTILE)  # its hidden field holds the option as text, and posts it back
        shown_votes(demo, [(HOSTILE, 3), ("Tea", 2)])
        expect(text.locator("#votes")).to_contain_text(f"{json.dumps(HOSTILE)}:3")

        for tab in (text, demo):
            assert tab.locator("img").count() == 0  # text, never markup
            assert tab.evaluate("() => window.pwned") is None
        for context in contexts:
            context.close()
    assert not errors, errors
