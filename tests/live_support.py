"""Helpers of the live-state tests: the consumer behind the session, as a project routes it.

The tests are sync functions that run an async scenario with ``async_to_sync``: code they call
through ``sync_to_async`` runs in the test's thread, on the test's database connection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory, override_settings

from statekit import pages, routing

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
    """Send ``frame`` (JSON) and return the answer."""
    await ws.send_json_to(frame)
    return await ws.receive_json_from(timeout=3)


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
    return json.loads(await ws.receive_from(timeout=timeout))


@contextmanager
def fresh_layer(backend: str = "channels.layers.InMemoryChannelLayer", **config: Any):
    """A new channel layer (the ``layer`` fixture of the live tests)."""
    conf = {"default": {"BACKEND": backend, "CONFIG": config}}
    with override_settings(CHANNEL_LAYERS=conf):
        yield get_channel_layer()
