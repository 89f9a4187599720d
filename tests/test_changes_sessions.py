"""Streams of session and page state end with their session's key: at logout (``flush``)
and at login (``cycle_key``, which moves the values to a new key), so a live page follows
again with the session it has now instead of watching a key nobody writes any more."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from statekit import PageState, SessionState
from statekit.lifecycle.sessions import watch
from statekit.state.pages import new_page, verify
from statekit.streams.feeds import hub
from tests.conftest import ALL_BACKENDS
from tests.live_support import run

TIMEOUT = 30  # a guard against a hang, not a measure


def hooked_session() -> SessionStore:
    """A session with statekit's hooks, as StatekitMiddleware installs them."""
    request = RequestFactory().get("/")
    request.session = SessionStore()
    request.session.create()
    watch(request)
    return request.session


async def ended(values) -> bool:
    """Whether the stream ends (within the guard) instead of yielding again."""
    try:
        await asyncio.wait_for(anext(values), TIMEOUT)
    except StopAsyncIteration:
        return True
    return False


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_session_streams_end_at_login_and_logout_others_go_on(backend, name):
    cart = SessionState(name, default=list)
    session, other = hooked_session(), hooked_session()
    old = session.session_key

    async def scenario():
        async with (
            aclosing(cart.changes(old)) as mine,
            aclosing(cart.changes(other.session_key)) as theirs,
        ):
            assert await anext(mine) == [] and await anext(theirs) == []
            await sync_to_async(session.cycle_key)()  # login
            assert await ended(mine)
            after_login = session.session_key
            async with aclosing(cart.changes(after_login)) as again:
                assert await anext(again) == []
                await cart.aset(after_login, ["tea"])
                assert await asyncio.wait_for(anext(again), TIMEOUT) == ["tea"]
                await sync_to_async(session.flush)()  # logout
                assert await ended(again)
            await cart.aset(other.session_key, ["jam"])  # another session streams on
            return await asyncio.wait_for(anext(theirs), TIMEOUT)

    assert run(scenario) == ["jam"]
    assert hub().count() == 0


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_page_streams_end_with_their_session(backend, name):
    chat = PageState(name, default=list)
    session = hooked_session()
    request = RequestFactory().get("/")
    request.session = session
    owner = verify(session, new_page(request))

    async def scenario():
        async with aclosing(chat.changes(owner)) as values:
            assert await anext(values) == []
            await sync_to_async(session.flush)()
            return await ended(values)

    assert run(scenario)


@pytest.mark.django_db(transaction=True)
def test_a_websocket_watching_session_state_is_closed_at_logout(name):
    """Code 4401: statekit.js reconnects, and its new connection carries the new session."""
    from tests.live_support import connected
    from tests.live_support import watch as ws_watch

    SessionState(name, default=list)
    session = hooked_session()

    async def scenario():
        async with connected(session.session_key) as ws:
            assert await ws_watch(ws, 1, name, "session") == []
            await sync_to_async(session.flush)()
            return await ws.receive_output(timeout=TIMEOUT)

    assert run(scenario) == {"type": "websocket.close", "code": 4401, "reason": "session changed"}
    assert hub().count() == 0


@pytest.mark.django_db(transaction=True)
def test_an_event_stream_of_session_state_ends_at_login(name):
    """The browser reconnects by itself, with the cookie of its new session."""
    from django.conf import settings
    from django.test import AsyncClient

    from tests.test_sse import URL, events

    cart = SessionState(name, default=list)
    session = hooked_session()
    cart.set(session.session_key, ["tea"])

    async def scenario():
        client = AsyncClient()
        client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
        response = await client.get(URL, {"watch": f"session:{name}"})
        async with aclosing(response.streaming_content) as chunks:
            first = await events(response, 1)
            await sync_to_async(session.cycle_key)()
            rest = [chunk async for chunk in chunks]  # the stream ends
        return first, rest

    first, rest = run(scenario)
    assert first == [(f"session:{name}", '["tea"]')] and not any(b"data:" in c for c in rest)
    assert cart.get(session.session_key) == ["tea"]  # moved to the new key
    assert hub().count() == 0
