"""The Redis of the channel layer that carries db-on-SQLite's change streams dies (issue 10
follow-up, now on statekit.streams.layer): quiet, writes never fail, and the open websockets
resync when it is back, without closing or reconnecting.

Each test starts a Redis server of its own for the channels-redis layer and kills it.
"""

from __future__ import annotations

import json
import uuid
from contextlib import ExitStack

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import needs
from tests.live_support import WS_PATH, Server, process_env, visit
from tests.redis_server import RedisServer
from tests.test_live_redis_restart import own_redis_fixture  # noqa: F401

pytestmark = [*needs("redis"), pytest.mark.django_db(transaction=True)]


def frame_of(client) -> dict:
    frame = json.loads(client.recv(30))
    client.send(json.dumps({"type": "ack", "ack": frame.pop("ack")}))
    return frame


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_open_websockets_resync_when_the_layers_redis_is_back(own_redis: RedisServer, kind):
    env = process_env(
        STATEKIT_TEST_CHANNELS_PREFIX=f"statekit-live-{uuid.uuid4().hex[:10]}",
        STATEKIT_TEST_CHANNELS_URL=own_redis.url,
    )
    watch_frame = json.dumps({"type": "watch", "id": 1, "name": "visitors"})
    url = f"ws://127.0.0.1:{{}}{WS_PATH}"
    with Server(env, kind=kind) as server, ExitStack() as stack:
        clients = [
            stack.enter_context(connect(url.format(server.port), origin=server.url))
            for _ in range(3)
        ]
        for client in clients:
            client.send(watch_frame)
            assert frame_of(client)["type"] == "value"
        own_redis.kill()
        for client in clients:  # the sockets stay open: nothing arrives, nothing closes
            with pytest.raises(TimeoutError):
                client.recv(1)
        first = visit(server.url + "/visitors")  # a write while the layer is down: not lost
        own_redis.start(empty=True)
        for client in clients:  # the feed reconnects: each watch reads its value again
            frame = frame_of(client)
            assert (frame["type"], frame["value"]) == ("change", first), frame
        assert visit(server.url + "/visitors") == first + 1  # and changes are live again
        for client in clients:
            assert frame_of(client)["value"] == first + 1
        for client in clients:
            try:
                client.send(json.dumps({"type": "unwatch", "id": 1}))
            except ConnectionClosed as exc:
                raise AssertionError("a websocket was closed by the outage") from exc
        server.log.seek(0)
        output = server.log.read().decode(errors="replace")
    assert "Traceback" not in output and "Exception inside application" not in output, output
