"""Publishing changes: one publish per change, whatever the number of clients, one
subscription per process, from sync and async code, in process and on a channels-redis layer
(db on SQLite); never failing a write."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connections
from django.test import override_settings

from statekit import GlobalState, SessionState
from statekit.streams import layer as layer_module
from statekit.streams.feeds import LocalHub, hub
from tests.conftest import clear_redis_prefix, needs, unique_prefix
from tests.live_server_settings import CHANNELS_REDIS_DB
from tests.live_support import (
    connected,
    fresh_layer,
    new_session,
    next_frame,
    released,
    run,
    subscriptions,
    watch,
)
from tests.services import REDIS_HOST, REDIS_PORT

pytestmark = pytest.mark.django_db(transaction=True)


board = GlobalState("test_live_fanout.board", default=0, public=True)
hidden = GlobalState("test_live_fanout.hidden", default=0)
basket = SessionState("test_live_fanout.basket", default=list)


@pytest.fixture
def sent(monkeypatch):
    """The keys of every change published to the feed (db on SQLite: this process's), in order."""
    keys: list[str] = []
    original = LocalHub.publish

    def counting(self, key, text):
        keys.append(f"{key.scope}:{key.owner}:{key.name}")
        original(self, key, text)

    monkeypatch.setattr(LocalHub, "publish", counting)
    return keys


def test_one_change_is_one_publish_for_any_number_of_clients(sent):
    clients = 50

    async def scenario():
        sockets = [connected() for _ in range(clients)]
        opened = [await s.__aenter__() for s in sockets]
        try:
            for i, ws in enumerate(opened):
                await watch(ws, i, board.name)
            assert subscriptions() == clients
            await sync_to_async(board.set)(7)
            assert sent == [f"global::{board.name}"]
            for ws in opened:
                assert (await next_frame(ws))["value"] == 7
            await board.aincr()
            assert len(sent) == 2
            for ws in opened:
                assert (await next_frame(ws))["value"] == 8
        finally:
            for s in sockets:
                await s.__aexit__(None, None, None)
        await released()

    run(scenario)


def test_a_session_change_is_one_publish_to_that_session_only(sent):
    mine, other = new_session(), new_session()

    async def scenario():
        async with connected(mine) as a1, connected(mine) as a2, connected(other) as b:
            for ws in (a1, a2, b):
                await watch(ws, 1, basket.name, "session")
            await sync_to_async(basket.set)(mine, ["apple"])
            assert sent == [f"session:{mine}:{basket.name}"]
            assert (await next_frame(a1))["value"] == ["apple"]
            assert (await next_frame(a2))["value"] == ["apple"]
            assert await b.receive_nothing(timeout=0.2)

    run(scenario)


def test_server_only_globals_are_never_published(sent):
    hidden.set(1)
    hidden.incr()
    async_to_sync(hidden.aset)(10)
    assert sent == []


def test_websockets_need_no_channel_layer():
    with override_settings(CHANNEL_LAYERS={}):

        async def scenario():
            async with connected() as ws:
                assert await watch(ws, 1, board.name) == 0
                await sync_to_async(board.set)(1)
                assert (await next_frame(ws))["value"] == 1
                assert await board.aincr() == 2
                assert (await next_frame(ws))["value"] == 2

        run(scenario)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LAYER_FAILED = "statekit's change feed (LayerHub) failed to publish"


def test_an_unreachable_channel_layer_never_fails_a_write(caplog):
    down = [f"redis://127.0.0.1:{_closed_port()}/0"]
    redis_layer = "channels_redis.core.RedisChannelLayer"
    with fresh_layer(redis_layer, hosts=down), caplog.at_level(logging.WARNING, "statekit"):
        board.set(5)
        assert board.get() == 5
        assert caplog.text.count(LAYER_FAILED) == 1
        assert async_to_sync(board.aincr)() == 6
        time.sleep(0.5)
        board.set(7)
        assert caplog.text.count(LAYER_FAILED) == 1  # one warning per outage
        assert all(r.levelno == logging.WARNING and not r.exc_info for r in caplog.records)


def test_a_channel_layer_that_does_not_answer_delays_one_write_at_most(caplog, monkeypatch):
    monkeypatch.setattr(layer_module, "PUBLISH_TIMEOUT", 0.5)
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        hosts = [f"redis://127.0.0.1:{silent.getsockname()[1]}/0"]
        with fresh_layer("channels_redis.core.RedisChannelLayer", hosts=hosts):
            with caplog.at_level(logging.WARNING, "statekit"):
                started = time.monotonic()
                board.set(1)  # waits for the layer, up to PUBLISH_TIMEOUT
                assert caplog.text.count(LAYER_FAILED) == 1
                for i in range(5):
                    board.set(i + 2)  # the layer is down: none of them waits
                assert time.monotonic() - started < 1.5
                assert caplog.text.count(LAYER_FAILED) == 1
                assert board.get() == 6


@pytest.fixture
def redis_layer():
    """A channels-redis layer on the real Redis, under a prefix of its own."""
    hosts = [f"redis://{REDIS_HOST}:{REDIS_PORT}/{CHANNELS_REDIS_DB}"]
    prefix = f"statekit-tests-{uuid.uuid4().hex[:8]}"
    with fresh_layer("channels_redis.core.RedisChannelLayer", hosts=hosts, prefix=prefix) as layer:
        yield layer


def _write_from_a_plain_thread(value: int) -> None:
    """As a management command or a worker task does: sync code, no event loop around."""
    try:
        board.set(value)
    finally:
        connections.close_all()


class TestOnChannelsRedis:
    pytestmark = needs("redis")

    def test_changes_from_sync_and_async_code_reach_the_watchers(self, redis_layer):
        async def scenario():
            async with connected() as ws:
                assert await watch(ws, 1, board.name) == 0
                await sync_to_async(board.set)(1)  # a sync view under an ASGI server
                assert (await next_frame(ws))["value"] == 1
                await board.aincr()  # async code
                assert (await next_frame(ws))["value"] == 2
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, _write_from_a_plain_thread, 3)
                assert (await next_frame(ws))["value"] == 3

        run(scenario)

    def test_one_subscription_per_process_for_any_number_of_websockets(self, redis_layer):
        prefix = unique_prefix()
        conf = {"BACKEND": "cache", "CACHE_ALIAS": "redis", "KEY_PREFIX": prefix}
        client = redis.Redis(REDIS_HOST, REDIS_PORT)

        def numsub() -> int:
            channel = hub().channel  # the cache's Redis pub/sub channel
            return dict(client.pubsub_numsub(channel)).get(channel.encode(), 0)

        async def scenario():
            sockets = [connected() for _ in range(20)]
            opened = [await s.__aenter__() for s in sockets]
            for ws in opened:
                await watch(ws, 1, board.name)
            assert numsub() == 1 and subscriptions() == 20
            await board.aset(3)
            for ws in opened:
                assert (await next_frame(ws))["value"] == 3
            for s in sockets:
                await s.__aexit__(None, None, None)
            await released()
            deadline = time.monotonic() + 5
            while numsub() and time.monotonic() < deadline:  # the listener thread ends
                await asyncio.sleep(0.05)
            assert numsub() == 0

        try:
            with override_settings(STATEKIT=conf):
                run(scenario)
        finally:
            client.close()
            clear_redis_prefix("redis", prefix)

    def test_a_sync_write_inside_the_event_loop_is_published_too(self, redis_layer):
        # Sync calls in async code block the loop, but work: the cache backend allows them.
        prefix = unique_prefix()
        conf = {"BACKEND": "cache", "CACHE_ALIAS": "redis", "KEY_PREFIX": prefix}

        async def scenario():
            async with connected() as ws:
                assert await watch(ws, 1, board.name) == 0
                board.set(4)
                assert (await next_frame(ws))["value"] == 4

        try:
            with override_settings(STATEKIT=conf):
                run(scenario)
        finally:
            clear_redis_prefix("redis", prefix)
