"""Helpers of the live-state tests: the consumer behind the session, as a project routes it.

The tests are sync functions that run an async scenario with ``async_to_sync``: code they call
through ``sync_to_async`` runs in the test's thread, on the test's database connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import aclosing, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory, override_settings

from statekit import routing
from statekit.live.owner import as_json
from statekit.state import pages
from statekit.streams.feeds import hub
from tests.live_server_settings import CHANNELS_REDIS_DB
from tests.netns import LOCALHOST, Host
from tests.services import REDIS_HOST, REDIS_PORT

WS_PATH = "/ws/statekit/"


def run(scenario: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run the async ``scenario`` from a sync test."""
    return async_to_sync(scenario)()


def application() -> Any:
    """The consumer as example_project/asgi.py routes it: behind the Django session."""
    return SessionMiddlewareStack(URLRouter(routing.websocket_urlpatterns))


def new_page(session_key: str | None = None) -> tuple[str, str, str]:
    """A page rendered for a session (a new one by default): (session key, page id, owner)."""
    request = RequestFactory().get("/")
    request.session = SessionStore(session_key)
    page_id = pages.new_page(request)
    request.session.save()
    return request.session.session_key, page_id, pages.verify(request.session, page_id)


def new_session() -> str:
    """The key of a new, saved session."""
    store = SessionStore()
    store.create()
    assert store.session_key
    return store.session_key


@asynccontextmanager
async def connected(
    session_key: str | None = None, path: str = WS_PATH
) -> AsyncIterator[WebsocketCommunicator]:
    """An open websocket to the consumer, with the session cookie of ``session_key``."""
    headers = []
    if session_key:
        cookie = f"{settings.SESSION_COOKIE_NAME}={session_key}"
        headers.append((b"cookie", cookie.encode()))
    communicator = WebsocketCommunicator(application(), path, headers=headers)
    accepted, _ = await communicator.connect()
    assert accepted
    try:
        yield communicator
    finally:
        await communicator.disconnect()


async def ask(ws: WebsocketCommunicator, **frame: Any) -> dict[str, Any]:
    """Send ``frame`` (JSON) and return the answer (acknowledged, as statekit.js does)."""
    await ws.send_json_to(frame)
    return await next_frame(ws)


async def watch(
    ws: WebsocketCommunicator, id: Any, name: str, scope: str = "global", **more: Any
) -> Any:
    """Watch ``name``; return the current value the server answered with."""
    answer = await ask(ws, type="watch", id=id, name=name, scope=scope, **more)
    assert answer == {"type": "value", "id": id, "scope": scope, "name": name} | {
        "value": answer.get("value")
    }, answer
    return answer["value"]


async def next_frame(ws: WebsocketCommunicator, timeout: float = 3) -> dict[str, Any]:
    """The next frame, without its ``ack`` token, which is sent back as statekit.js does."""
    frame = json.loads(await ws.receive_from(timeout=timeout))
    token = frame.pop("ack")
    await ws.send_json_to({"type": "ack", "ack": token})
    return frame


def subscriptions() -> int:
    """How many change-stream subscriptions this process holds: one per watch of a websocket
    (and per stream of changes() or of an event stream)."""
    return hub().count()


def live_json(variable: Any, write: Callable[[], Any], owner: str | None = None) -> tuple[Any, str]:
    """What a page watching ``variable`` (of ``owner``) is sent after ``write()``, which runs
    as a sync view does (on this test's thread and database connection): ``write()``'s
    result, and the JSON of the value that follows it on the change stream."""

    async def scenario() -> tuple[Any, str]:
        values = variable.changes() if owner is None else variable.changes(owner)
        async with aclosing(values) as found:
            await anext(found)  # the current value: subscribed
            result = await sync_to_async(write)()
            return result, as_json(variable, await asyncio.wait_for(anext(found), 30))

    return async_to_sync(scenario)()


async def released(before: int = 0, timeout: float = 3) -> None:
    """Wait until the subscriptions are back to ``before`` (a task being cancelled releases
    its subscription at its next step); fail if they are not."""
    deadline = time.monotonic() + timeout
    while subscriptions() != before:
        assert time.monotonic() < deadline, f"{subscriptions()} subscriptions, not {before}"
        await asyncio.sleep(0.01)


@contextmanager
def fresh_layer(backend: str = "channels.layers.InMemoryChannelLayer", **config: Any):
    """A new channel layer as ``CHANNEL_LAYERS["default"]`` (for db on SQLite, a network
    layer then carries the change streams between processes: statekit.streams.layer)."""
    conf = {"default": {"BACKEND": backend, "CONFIG": config}}
    with override_settings(CHANNEL_LAYERS=conf):
        yield get_channel_layer()


# -- server processes ------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a process of the live tests: tests/live_server_settings.py on this
    test's database (the SQLite file), plus ``extra`` (e.g. the channels-redis prefix)."""
    from django.db import connection

    path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.live_server_settings",
        "STATEKIT_TEST_DB": str(connection.settings_dict["NAME"]),
        "PYTHONPATH": os.pathsep.join(path),
        **extra,
    }


@pytest.fixture(name="channels_redis_prefix")
def channels_redis_prefix_fixture() -> Iterator[str]:
    """A prefix for the channels-redis layer shared by the processes of one test."""
    prefix = f"statekit-live-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis(REDIS_HOST, REDIS_PORT, db=CHANNELS_REDIS_DB)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.unlink(key)
    client.close()


SERVERS = {  # the command line before the port; {host}: the address it listens on
    "daphne": ["-m", "daphne", "-b", "{host}", "-p"],
    "uvicorn": [
        *("-m", "uvicorn", "--ws", "websockets", "--lifespan", "off"),
        *("--host", "{host}", "--port"),
    ],
}


class Server:
    """A daphne (or uvicorn) process serving the example project with websockets
    (tests/live_asgi.py), on ``host`` (127.0.0.1, or a host of tests/netns.py)."""

    def __init__(
        self,
        env: dict[str, str],
        port: int | None = None,
        kind: str = "daphne",
        args: tuple[str, ...] = (),
        app: str = "tests.live_asgi:application",
        host: Host = LOCALHOST,
    ) -> None:
        self.app = app
        self.env = env
        self.kind = kind
        self.args = args  # more options of the server, e.g. ("--workers", "2")
        self.host = host
        self.port = port or free_port()
        self.url = f"http://{host.address}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log: Any = None

    def start(self) -> Server:
        self.log = tempfile.TemporaryFile()  # its output, shown when it does not start
        command = [sys.executable, *SERVERS[self.kind], str(self.port), *self.args]
        command = [part.format(host=self.host.address) for part in command]
        self.process = subprocess.Popen(
            self.host.command([*command, self.app]),
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait(self, timeout: float = 30) -> Server:
        """Until it serves statekit.js; fails with its output if it died or did not start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                break
            try:
                with urlopen(f"{self.url}/static/statekit/statekit.js", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.log.seek(0)
        output = self.log.read().decode(errors="replace")
        raise AssertionError(f"{self.kind} on port {self.port} did not start:\n{output}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def __enter__(self) -> Server:
        try:
            return self.start().wait()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def visit(url: str) -> int:
    """Load the visitor counter page (a visit, counted) and return the number it shows."""
    with urlopen(url + "/", timeout=10) as response:
        page = response.read().decode()
    found = re.search(r'id="visitors">(\d+)<', page)
    assert found, page
    return int(found.group(1))


def run_command(env: dict[str, str], code: str) -> None:
    """Run ``code`` in ``manage.py shell``: a management command, another process."""
    command = [sys.executable, "manage.py", "shell", "-c", code]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


#: In a page: watch "visitors" too, keep what arrives in window.seen as [value, source], and
#: resolve with the first value (the watch is then in place on the server).
WATCH_VISITORS = """() => new Promise((resolve) => {
  window.seen = [];
  statekit.watch("visitors", (value, info) => {
    window.seen.push([value, info.source]);
    if (info.source === "value") resolve(value);
  });
})"""


def seen(page: Any, value: int, source: str = "change", timeout: float = 10_000) -> None:
    """Wait until ``page`` received ``value`` from its watch of "visitors", as ``source``."""
    page.wait_for_function(
        "([v, s]) => window.seen.some(([value, source]) => value === v && source === s)",
        arg=[value, source],
        timeout=timeout,
    )
