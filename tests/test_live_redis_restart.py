"""The Redis of the channel layer that carries db-on-SQLite's change streams restarted under
live traffic: watching pages resync to the current value within seconds, without a reload
(the feed reconnects and every watch is sent its value again, on the same websocket).

The test starts a Redis server of its own for the channels-redis layer (never the shared
one), kills it while a page in Chromium watches, starts it again empty on the same port, and
writes: the page shows the new value, and later writes are live again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import needs
from tests.live_support import (
    WATCH_VISITORS,
    Server,
    process_env,
    run_command,
    seen,
    visit,
)
from tests.redis_server import RedisServer
from tests.test_live_browser import INCR, chromium, shown

pytestmark = [*needs("redis", "chromium"), pytest.mark.django_db(transaction=True)]


@pytest.fixture(name="own_redis")
def own_redis_fixture() -> Iterator[RedisServer]:
    """A Redis of the test's own for the channel layer; ``start(empty=True)`` restarts it empty."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


def test_pages_resync_after_the_layers_redis_restarts(own_redis):
    from playwright.sync_api import expect

    env = process_env(
        STATEKIT_TEST_CHANNELS_PREFIX=f"statekit-live-{uuid.uuid4().hex[:10]}",
        STATEKIT_TEST_CHANNELS_URL=own_redis.url,
    )
    with Server(env) as server, chromium() as browser:
        page = browser.new_page()
        page.goto(server.url + "/visitors/")
        first = shown(page)
        page.evaluate(WATCH_VISITORS)
        assert visit(server.url + "/visitors") == first + 1
        seen(page, first + 1)

        own_redis.kill()  # the layer's Redis restarts, empty: every group is gone
        run_command(env, INCR.format(5))  # a write while it is down: not published
        own_redis.start(empty=True)
        # The feed reconnects and every watch reads its value again: the page shows the value
        # written meanwhile, as a change on the same websocket, without a reload.
        expect(page.locator("#visitors")).to_have_text(str(first + 6), timeout=60_000)
        seen(page, first + 6, "change", timeout=30_000)

        # A write through the server process, whose pooled connections are stale now.
        assert visit(server.url + "/visitors") == first + 7
        seen(page, first + 7, timeout=30_000)
        expect(page.locator("#visitors")).to_have_text(str(first + 7))
        run_command(env, INCR.format(1))  # and from another process
        seen(page, first + 8)
        expect(page.locator("#visitors")).to_have_text(str(first + 8))
