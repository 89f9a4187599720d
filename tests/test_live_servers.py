"""Hostile websocket clients against real servers: two Daphne (or uvicorn) processes sharing a
channels-redis layer, clients on bare sockets that never read, duplicate watches, oversized,
malformed and surrogate frames, floods of watch/unwatch; and the server's memory under them."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from websockets.sync.client import connect

from example_project.demo.state import visitors
from statekit.live.outbox import CLOSE_TOO_SLOW
from tests.conftest import needs
from tests.live_server_settings import CHANNELS_REDIS_DB
from tests.live_support import (  # noqa: F401  (fixture: channels_redis_prefix)
    WS_PATH,
    Server,
    channels_redis_prefix_fixture,
    fresh_layer,
    process_env,
)
from tests.services import REDIS_HOST, REDIS_PORT

pytestmark = [*needs("redis"), pytest.mark.django_db(transaction=True)]

KINDS = ["daphne", "uvicorn"]
BIG = 50_000  # bytes of each value, as in the report


class RawClient:
    """A websocket client on a bare socket: it sends what it likes and reads only when told."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # hold little itself
        self.sock.settimeout(20)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(
            f"GET {WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)  # the handshake only, not a byte more
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, text: str) -> None:
        payload = text.encode()
        size = len(payload)
        if size < 126:
            header = bytes([0x81, 0x80 | size])
        elif size < 65536:
            header = bytes([0x81, 0x80 | 126]) + size.to_bytes(2, "big")
        else:
            header = bytes([0x81, 0x80 | 127]) + size.to_bytes(8, "big")
        self.sock.sendall(header + b"\0\0\0\0" + payload)  # a zero mask: the payload as is

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed without a close frame")
            data += chunk
        return data

    def drain(self, timeout: float = 60) -> tuple[list[dict[str, Any]], int | None]:
        """Read everything now: (the frames, the close code, or None if still open)."""
        frames: list[dict[str, Any]] = []
        self.sock.settimeout(timeout)
        try:
            while True:
                first, second = self._read(2)
                size = second & 0x7F
                if size >= 126:
                    size = int.from_bytes(self._read(2 if size == 126 else 8), "big")
                payload = self._read(size)
                if first & 0x0F == 0x8:
                    return frames, int.from_bytes(payload[:2], "big")
                frames.append(json.loads(payload))
        except TimeoutError:
            return frames, None
        except ConnectionError:  # reset: closed while it still sent (the logs are checked)
            return frames, None

    def close(self) -> None:
        self.sock.close()


def abuse(client: RawClient) -> None:
    """Everything an attacker sends, without reading a frame (until the server closes it)."""
    try:
        _abuse(client)
    except ConnectionError:
        pass  # closed as too slow while it was still sending: the server's log tells why


def _abuse(client: RawClient) -> None:
    watch = '{{"type":"watch","id":{},"name":"visitors"{}}}'
    for i in range(100):
        client.send(watch.format(i, ""))  # the same variable 100 times
    client.send(watch.format('"\\ud800"', ""))  # lone surrogates, as JSON escapes
    client.send(watch.format('"p"', ',"scope":"page","page":"\\udfff"'))
    client.send('{"type":"watch","id":"\\udc00x","name":"\\ud800"}')
    client.send('{"type":"ack","ack":"\\ud83d"}')
    client.send("x" * 100_000)  # oversized
    for bad in ("not json", "[" * 5000, '{"type":["watch"]}', "{}", '{"type":"ack"}'):
        client.send(bad)
    for i in range(300):  # a flood of watch/unwatch
        client.send(watch.format(f'"f{i}"', ',"scope":"global"'))
        client.send(f'{{"type":"unwatch","id":"f{i}"}}')


@contextmanager
def servers(kind: str, count: int, prefix: str) -> Iterator[list[Server]]:
    """``count`` processes of ``kind`` on one channels-redis layer; this process on it too."""
    env = process_env(STATEKIT_TEST_CHANNELS_PREFIX=prefix)
    hosts = [f"redis://{REDIS_HOST}:{REDIS_PORT}/{CHANNELS_REDIS_DB}"]
    with ExitStack() as stack:
        started = [Server(env, kind=kind).start() for _ in range(count)]
        for server in started:
            stack.callback(server.stop)
        for server in started:
            server.wait()
        stack.enter_context(
            fresh_layer("channels_redis.core.RedisChannelLayer", hosts=hosts, prefix=prefix)
        )
        yield started


def reader(server: Server) -> Any:
    """A well-behaved client (as statekit.js): reads and acknowledges every frame."""
    url = f"ws://127.0.0.1:{server.port}{WS_PATH}"
    return connect(url, origin=f"http://127.0.0.1:{server.port}", max_size=None)


def next_value(ws: Any, timeout: float = 20) -> Any:
    frame = json.loads(ws.recv(timeout=timeout))
    ws.send(json.dumps({"type": "ack", "ack": frame.pop("ack")}))
    assert frame["type"] in ("value", "change"), frame
    return frame["value"]


def server_log(server: Server) -> str:
    server.log.seek(0)
    return server.log.read().decode(errors="replace")


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_clients_on_two_processes_over_channels_redis(kind, channels_redis_prefix):
    with servers(kind, 2, channels_redis_prefix) as (one, other):
        visitors.set("start")
        with reader(other) as good:
            good.send(json.dumps({"type": "watch", "id": 1, "name": "visitors"}))
            assert next_value(good) == "start"
            hostile = [RawClient(one.port) for _ in range(3)]
            for client in hostile:
                abuse(client)
            for i in range(30):
                visitors.set(f"{i}:" + "v" * BIG)
            while not str(value := next_value(good)).startswith("29:"):
                assert str(value)[:3] != "29:"  # every change reaches the other process
            for client in hostile:
                frames, code = client.drain(timeout=5)
                client.close()
                assert code in (None, CLOSE_TOO_SLOW), code  # never 1011
                assert len(frames) <= 130, len(frames)  # bounded: the window, the answers
                assert not [f for f in frames if f.get("code") == "internal"]
                watched = [f for f in frames if f["type"] in ("value", "change")]
                assert {f["id"] for f in watched} <= {0}  # one watch of "visitors" only
        with reader(one) as fresh:  # the abused process serves on
            fresh.send(json.dumps({"type": "watch", "id": "x", "name": "visitors"}))
            assert next_value(fresh).startswith("29:")
        for server in (one, other):
            log = server_log(server)
            assert "Traceback" not in log and "1011" not in log, log[-3000:]


def rss_mb(server: Server) -> float:
    assert server.process is not None
    with open(f"/proc/{server.process.pid}/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kb / 1024


@pytest.mark.parametrize("kind", KINDS)
def test_never_reading_clients_keep_the_server_memory_flat(kind, channels_redis_prefix):
    clients, changes = 5, 60
    with servers(kind, 1, channels_redis_prefix) as (server,):
        visitors.set("start")
        with reader(server) as warm:  # load everything a watch needs before measuring
            warm.send(json.dumps({"type": "watch", "id": 1, "name": "visitors"}))
            next_value(warm)
        before = rss_mb(server)
        hostile = [RawClient(server.port) for _ in range(clients)]
        for client in hostile:
            for i in range(100):
                client.send(f'{{"type":"watch","id":{i},"name":"visitors"}}')
        for i in range(changes):
            visitors.set(f"{i}:" + "v" * BIG)
        peak = before
        for _ in range(30):  # the server works through it: watch the memory for 3 s
            time.sleep(0.1)
            peak = max(peak, rss_mb(server))
        for client in hostile:
            client.close()
        time.sleep(1)
        after = rss_mb(server)
        print(
            f"\n{kind}: {clients} never-reading clients x 100 watches, {changes} changes of "
            f"{BIG // 1000} KB: RSS {before:.0f} MB before, {peak:.0f} MB peak, "
            f"{after:.0f} MB after they left (+{peak - before:.0f} MB)"
        )
        assert peak - before < 100  # was +1.5 GB on Daphne
