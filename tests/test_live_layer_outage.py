"""The channel layer's Redis dies (issue 10 follow-up): quiet, and no latest value lost.

Each test starts a Redis server of its own for the channels-redis layer and kills it.
- Every websocket is closed with code 4503 (the client reconnects with its backoff); the
  process logs ONE warning, no traceback (in-process, and in Daphne's and uvicorn's output).
- A change written while the layer is down is held (the latest per group, bounded) and sent
  when the layer answers again: a page that resynced meanwhile still gets it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack
from typing import Any

import pytest
from statekit.live.layer import CLOSE_LAYER_FAILED, publisher
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from statekit import GlobalState, SessionState
from statekit.live import layer as layer_module
from tests.conftest import needs
from tests.live_support import (
    WS_PATH,
    Server,
    connected,
    fresh_layer,
    new_session,
    next_frame,
    process_env,
    run,
    visit,
    watch,
)
from tests.redis_server import RedisServer
from tests.test_live_redis_restart import own_redis_fixture  # noqa: F401

pytestmark = [*needs("redis"), pytest.mark.django_db(transaction=True)]

LAYER_FAILED = "The channel layer failed"
score = GlobalState("test_live_layer_outage.score", default=0, public=True)
notes = SessionState("test_live_layer_outage.notes", default="")


@pytest.fixture
def layer(own_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> Iterator[Any]:
    """A channels-redis layer on the test's own Redis; statekit.live's log captured."""
    backend = "channels_redis.core.RedisChannelLayer"
    with fresh_layer(
        backend, hosts=[own_redis.url], prefix=f"outage-{uuid.uuid4().hex[:8]}"
    ) as layer:
        with caplog.at_level(logging.INFO, "statekit.live"):
            yield layer


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    found = [r for r in caplog.records if r.name == "statekit.live" and r.levelno >= 30]
    assert not [r for r in found if r.exc_info or r.levelno > logging.WARNING], found
    return found


def test_websockets_close_with_one_warning_and_held_changes_arrive(
    own_redis, layer, caplog, monkeypatch
):
    retry = 10.0  # long: the write below lands while changes are still held
    monkeypatch.setattr(layer_module, "RETRY_SECONDS", retry)
    score.set(1)

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            sockets = [await stack.enter_async_context(connected()) for _ in range(3)]
            for ws in sockets:
                assert await watch(ws, 1, score.name) == 1
            await asyncio.to_thread(own_redis.kill)
            for ws in sockets:  # the consumer ends cleanly (an exception would raise here)
                closed = await ws.receive_output(timeout=10)
                assert closed["type"] == "websocket.close", closed
                assert closed["code"] == CLOSE_LAYER_FAILED
            assert [r.getMessage()[:24] for r in warnings(caplog)] == [LAYER_FAILED]

            await asyncio.to_thread(score.set, 2)  # fails at once: held
            await asyncio.to_thread(score.set, 3)  # held (not tried): the latest replaces it
            assert layer in publisher().held
            await asyncio.to_thread(own_redis.start, empty=True)
            async with connected() as ws:  # the page reconnects and resyncs
                assert await watch(ws, 1, score.name) == 3
                await asyncio.to_thread(score.set, 4)  # while changes are still held
                # The publisher tries every `retry` s; on a loaded machine a try may time out
                # (PUBLISH_TIMEOUT) or come before the write, sending 3 first: allow several
                # tries, and what arrives must end with the latest value.
                frame = await next_frame(ws, timeout=3 * retry + 30)
                while frame["value"] != 4:
                    assert frame["value"] == 3, frame
                    frame = await next_frame(ws, timeout=3 * retry + 30)
        # One warning per outage, not one per connection (a retry that times out on a loaded
        # machine after the layer answered may count as a second outage of the publisher).
        assert 1 <= len(warnings(caplog)) <= 2

    run(scenario)


def test_held_changes_are_bounded_oldest_dropped_and_counted(own_redis, layer, caplog):
    keys = [new_session() for _ in range(5)]
    own_redis.kill()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(layer_module, "MAX_HELD", 3)
        patch.setattr(layer_module, "RETRY_SECONDS", 0.2)
        for i, key in enumerate(keys):
            notes.set(key, f"note {i}")
        notes.set(keys[3], "latest")  # replaces its held message, and is now the newest
        held = publisher().held[layer]
        assert [json.loads(m[1]["value"]) for m in held.messages.values()] == [
            "note 2",
            "note 4",
            "latest",
        ]
        assert held.dropped == 2
        own_redis.start(empty=True)
        deadline = time.monotonic() + 20
        while "3 changes held while the channel layer was down are sent" not in caplog.text:
            assert time.monotonic() < deadline, "the held changes were not sent"
            time.sleep(0.05)
    texts = [r.getMessage() for r in warnings(caplog)]
    assert texts[0].startswith(LAYER_FAILED) and len(texts) == 2, texts
    assert "2 changes held while the channel layer was down were not published" in texts[1]
    assert layer not in publisher().held
    assert "answers again" in caplog.text


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_a_server_stays_quiet_when_the_layers_redis_dies(own_redis, kind):
    env = process_env(
        STATEKIT_TEST_CHANNELS_PREFIX=f"statekit-live-{uuid.uuid4().hex[:10]}",
        STATEKIT_TEST_CHANNELS_URL=own_redis.url,
    )
    watch_frame = json.dumps({"type": "watch", "id": 1, "name": "visitors"})
    url = f"ws://127.0.0.1:{{}}{WS_PATH}"
    with Server(env, kind=kind) as server, ExitStack() as stack:
        origin = server.url
        clients = [
            stack.enter_context(connect(url.format(server.port), origin=origin)) for _ in range(3)
        ]
        for client in clients:
            client.send(watch_frame)
            assert json.loads(client.recv(20))["type"] == "value"
        own_redis.kill()
        for client in clients:
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    client.recv(20)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_LAYER_FAILED
        first = visit(server.url + "/visitors")  # a write while the layer is down: held
        own_redis.start(empty=True)
        with connect(url.format(server.port), origin=origin) as client:
            client.send(watch_frame)
            frame = json.loads(client.recv(20))
            assert frame["type"] == "value" and frame["value"] >= first
            visit(server.url + "/visitors")
            while frame["value"] != first + 1:  # the held change may arrive first
                frame = json.loads(client.recv(20))
                assert frame["type"] == "change", frame
        server.log.seek(0)
        output = server.log.read().decode(errors="replace")
    assert "Traceback" not in output and "Exception inside application" not in output, output
    assert output.count(LAYER_FAILED) == 1, output
