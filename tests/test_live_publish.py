"""Sync writes on channels-redis publish at once, deletions included (issue 10, item 4).

db on SQLite has no pub/sub of its own: its change streams (and so the websockets) cross
processes on the channels-redis layer of CHANNEL_LAYERS (statekit.streams.layer).

A deletion's message carries what get() returns now. It used to be read in the publisher's
event loop (``aget()``, i.e. ``sync_to_async``), which needs the writer's thread: blocked
waiting for that loop, so the write stalled PUBLISH_TIMEOUT, logged "did not answer" and the
watchers never saw the deletion. Each write path is run here with a watcher on channels-redis:
a sync view under an ASGI server (daphne, and ``sync_to_async`` in-process), a sync view under
a threaded WSGI server, plain sync code (a thread, a management command) and async code.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.db import connections, transaction

from statekit import GlobalState, SessionState
from tests.conftest import needs
from tests.live_server_settings import CHANNELS_REDIS_DB
from tests.live_support import (
    ROOT,
    Server,
    connected,
    fresh_layer,
    new_session,
    next_frame,
    process_env,
    run,
    watch,
)
from tests.services import REDIS_HOST, REDIS_PORT

pytestmark = [*needs("redis"), pytest.mark.django_db(transaction=True)]

STALLED = "failed to publish"
basket = SessionState("test_live_publish.basket", default=list)
banner = GlobalState("test_live_publish.banner", default="welcome", public=True)


@pytest.fixture
def prefix() -> str:
    return f"statekit-tests-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def redis_layer(prefix: str, caplog: pytest.LogCaptureFixture) -> Iterator[Any]:
    """A channels-redis layer on the real Redis (the one server processes get with
    ``STATEKIT_TEST_CHANNELS_PREFIX=prefix``); asserts that no write stalled on it."""
    hosts = [f"redis://{REDIS_HOST}:{REDIS_PORT}/{CHANNELS_REDIS_DB}"]
    backend = "channels_redis.core.RedisChannelLayer"
    with fresh_layer(backend, hosts=hosts, prefix=prefix) as layer:
        with caplog.at_level(logging.INFO, "statekit"):
            yield layer
    assert STALLED not in caplog.text
    assert not [r for r in caplog.records if r.name.startswith("statekit") and r.levelno >= 30]


def _in_a_plain_thread(write: Any, *args: Any) -> None:
    """As a worker task does: sync code, no event loop and no asgiref context around."""
    try:
        write(*args)
    finally:
        connections.close_all()


def as_a_server(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``scenario`` in an event loop of its own thread, as an ASGI server does (not below
    the test's ``async_to_sync``, which would run sync code in the test's thread)."""

    def serve() -> None:
        try:
            asyncio.run(scenario())
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as server:
        server.submit(serve).result()


def test_sync_delete_and_set_as_a_sync_view_under_asgi(redis_layer):
    key = new_session()
    basket.set(key, ["milk"])

    async def view(write: Any, *args: Any) -> None:
        async with ThreadSensitiveContext():  # how Django's ASGIHandler runs a sync view
            await sync_to_async(write)(*args)

    async def scenario():
        async with connected(key) as ws:
            assert await watch(ws, 1, basket.name, "session") == ["milk"]
            await view(basket.delete, key)
            assert (await next_frame(ws))["value"] == []
            await view(basket.set, key, ["tea"])
            assert (await next_frame(ws))["value"] == ["tea"]
            await view(basket.delete, key)
            assert (await next_frame(ws))["value"] == []

    as_a_server(scenario)


def test_sync_delete_and_set_from_plain_code_and_async_code(redis_layer):
    key = new_session()
    banner.set("hello")

    async def scenario():
        async with connected(key) as ws:
            assert await watch(ws, 1, banner.name) == "hello"
            assert await watch(ws, 2, basket.name, "session") == []
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, _in_a_plain_thread, banner.delete)
            assert (await next_frame(ws))["value"] == "welcome"
            await loop.run_in_executor(None, _in_a_plain_thread, basket.set, key, ["jam"])
            assert (await next_frame(ws))["value"] == ["jam"]
            await basket.adelete(key)
            assert (await next_frame(ws))["value"] == []
            await banner.aset("again")
            assert (await next_frame(ws))["value"] == "again"
            await banner.adelete()
            assert (await next_frame(ws))["value"] == "welcome"

    as_a_server(scenario)


def test_a_delete_inside_a_transaction_is_published_after_the_commit(redis_layer):
    banner.set("hello")

    def delete_in_a_transaction() -> None:
        with transaction.atomic():
            banner.delete()

    async def scenario():
        async with connected() as ws:
            assert await watch(ws, 1, banner.name) == "hello"
            async with ThreadSensitiveContext():
                await sync_to_async(delete_in_a_transaction)()
            assert (await next_frame(ws))["value"] == "welcome"

    as_a_server(scenario)


def test_a_management_command_sets_and_deletes(redis_layer, prefix):
    banner.set("hello")
    env = process_env(STATEKIT_TEST_CHANNELS_PREFIX=prefix)
    # A second apart: a watch gets the latest value (writes closer together may reach it
    # as one, the last), and here each of the two must arrive.
    code = (
        "import time; from tests.test_live_publish import banner; "
        "banner.set('from a command'); time.sleep(1); banner.delete()"
    )

    async def scenario():
        async with connected() as ws:
            assert await watch(ws, 1, banner.name) == "hello"
            command = [sys.executable, "manage.py", "shell", "-c", code]
            done = await asyncio.to_thread(
                subprocess.run, command, cwd=ROOT, env=env, capture_output=True, timeout=60
            )
            output = (done.stdout + done.stderr).decode(errors="replace")
            assert done.returncode == 0, output
            assert STALLED not in output
            values = [(await next_frame(ws))["value"] for _ in range(2)]
            assert values == ["from a command", "welcome"]

    run(scenario)


# -- the cart demo's "Empty the cart", through real servers ---------------------------------


class Browser:
    """A client with a cookie jar: loads the cart page and posts its form (CSRF included)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar = CookieJar()
        self.opener = build_opener(HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    def cart(self, **form: str) -> None:
        self.opener.open(self.url + "/cart/", timeout=30).read()
        data = urlencode({**form, "csrfmiddlewaretoken": self.cookie("csrftoken")}).encode()
        request = Request(self.url + "/cart/", data=data, headers={"Referer": self.url})
        with self.opener.open(request, timeout=30) as response:
            assert response.status == 200  # after the redirect

    @property
    def session_key(self) -> str:
        return self.cookie(settings.SESSION_COOKIE_NAME)


def _empty_the_cart_is_seen_live(url: str) -> None:
    from example_project.demo.state import cart

    client = Browser(url)
    client.cart(items="Milk")
    key = client.session_key
    assert cart.get(key) == ["Milk"]

    async def scenario():
        async with connected(key) as ws:  # another tab of that session
            assert await watch(ws, 1, cart.name, "session") == ["Milk"]
            await asyncio.to_thread(client.cart, empty="1")
            assert (await next_frame(ws, timeout=10))["value"] == []
            await asyncio.to_thread(client.cart, items="Water")
            assert (await next_frame(ws, timeout=10))["value"] == ["Water"]

    run(scenario)


def test_empty_the_cart_under_daphne(redis_layer, prefix):
    env = process_env(STATEKIT_TEST_CHANNELS_PREFIX=prefix)
    with Server(env) as server:
        _empty_the_cart_is_seen_live(server.url)
        server.log.seek(0)
        output = server.log.read().decode(errors="replace")
    assert STALLED not in output, output


def test_empty_the_cart_under_a_threaded_wsgi_server(redis_layer, live_server):
    _empty_the_cart_is_seen_live(live_server.url)
