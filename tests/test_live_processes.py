"""Websockets on two server processes with NO channel layer: a write in one process reaches a
websocket on the other through the backend's own change feed (Redis pub/sub for the cache
backend, LISTEN/NOTIFY for db on PostgreSQL); Channels is the websocket's transport only."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.db import connections
from django.test import override_settings
from websockets.sync.client import connect

from tests.conftest import FEED_BACKENDS
from tests.live_support import WS_PATH, Server, process_env, run_command, visit


def socket_to(server: Server) -> Any:
    url = f"ws://127.0.0.1:{server.port}{WS_PATH}"
    return connect(url, origin=f"http://127.0.0.1:{server.port}")


def watch_visitors(ws: Any) -> Any:
    """Watch "visitors"; return its current value."""
    ws.send(json.dumps({"type": "watch", "id": 1, "name": "visitors"}))
    return next_frame(ws)["value"]


def next_frame(ws: Any) -> dict[str, Any]:
    """The next frame, acknowledged as statekit.js does."""
    frame = json.loads(ws.recv(timeout=20))
    ws.send(json.dumps({"type": "ack", "ack": frame.pop("ack")}))
    return frame


@pytest.mark.parametrize("conf", FEED_BACKENDS)
def test_a_write_in_one_process_reaches_a_websocket_on_another_without_channel_layers(conf):
    conf = {**conf, "KEY_PREFIX": f"statekit-ws-{uuid.uuid4().hex[:10]}"}
    extra = {"STATEKIT_TEST_STATEKIT": json.dumps(conf), "STATEKIT_TEST_NO_CHANNEL_LAYERS": "1"}
    if "postgres" in connections:
        extra["STATEKIT_TEST_POSTGRES_DB"] = str(connections["postgres"].settings_dict["NAME"])
    env = process_env(**extra)
    check = "from django.conf import settings; assert settings.CHANNEL_LAYERS == {}"
    run_command(env, check)  # the servers run without any channel layer
    one, other = Server(env), Server(env)
    with override_settings(STATEKIT=conf), one, other:
        with socket_to(other) as on_other, socket_to(one) as on_one:
            start = watch_visitors(on_other)
            assert watch_visitors(on_one) == start
            assert visit(one.url + "/visitors") == start + 1  # counted by process one
            for ws in (on_other, on_one):
                assert next_frame(ws) == {
                    "type": "change",
                    "id": 1,
                    "scope": "global",
                    "name": "visitors",
                    "value": start + 1,
                }
            assert visit(other.url + "/visitors") == start + 2  # and by the other
            assert [next_frame(ws)["value"] for ws in (on_one, on_other)] == [start + 2] * 2
            run_command(env, "from example_project.demo.state import visitors; visitors.set(99)")
            assert next_frame(on_other)["value"] == 99  # a third process: a command
            assert next_frame(on_one)["value"] == 99
