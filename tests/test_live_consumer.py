"""The websocket consumer, driven with Channels' WebsocketCommunicator behind the session."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from statekit import GlobalState, SessionState, routing
from statekit.backends import BaseBackend
from statekit.exceptions import BackendUnavailable
from tests.live_support import (
    WS_PATH,
    ask,
    connected,
    new_session,
    next_frame,
    released,
    run,
    subscriptions,
    watch,
)

pytestmark = pytest.mark.django_db(transaction=True)


score = GlobalState("test_live.score", default=0, public=True)
other = GlobalState("test_live.other", default=0, public=True)
secret = GlobalState("test_live.secret", default="hidden")
cart = SessionState("test_live.cart", default=list)


def test_watch_a_public_global_gets_its_value_then_every_change():
    score.set(3)

    async def scenario():
        async with connected() as ws:
            assert await watch(ws, 1, score.name) == 3
            await sync_to_async(score.set)(4)  # sync code (a view, a command)
            assert await next_frame(ws) == {
                "type": "change",
                "id": 1,
                "scope": "global",
                "name": score.name,
                "value": 4,
            }
            await score.aincr(10)  # async code
            assert (await next_frame(ws))["value"] == 14
            await sync_to_async(score.set)(14)  # same content: no change, no frame
            assert await ws.receive_nothing(timeout=0.2)
            await score.adelete()  # deleted: reads as the default again
            assert (await next_frame(ws))["value"] == 0

    run(scenario)


def test_values_reach_the_browser_as_json():
    score.set({"price": Decimal("1.50"), "ok": True, "tags": ["a"]})

    async def scenario():
        async with connected() as ws:
            assert await watch(ws, "s", score.name) == {"price": "1.50", "ok": True, "tags": ["a"]}

    run(scenario)


def test_watch_reads_and_follows_writes_on_each_backend(backend, name):
    counter = GlobalState(name, default=5, public=True)

    async def scenario():
        async with connected() as ws:
            assert await watch(ws, 1, name) == 5
            await sync_to_async(counter.incr)()
            assert (await next_frame(ws))["value"] == 6
            await counter.aupdate(lambda n: n * 10)
            assert (await next_frame(ws))["value"] == 60

    run(scenario)


def test_non_public_and_undeclared_globals_are_refused_alike():
    async def scenario():
        async with connected() as ws:
            refused = []
            for i, name in enumerate([secret.name, "test_live.nothing-by-this-name"]):
                answer = await ask(ws, type="watch", id=i, name=name, scope="global")
                assert answer["type"] == "error" and answer["code"] == "refused"
                refused.append(answer["message"].replace(name, "NAME"))
            assert refused[0] == refused[1]  # a name cannot be probed
            await sync_to_async(secret.set)("changed")
            assert await ws.receive_nothing(timeout=0.2)

    run(scenario)


def test_session_state_of_the_own_session_only():
    mine, other = new_session(), new_session()
    cart.set(mine, ["mine"])
    cart.set(other, ["other"])

    async def scenario():
        async with connected(mine) as ws:
            assert await watch(ws, 1, cart.name, "session") == ["mine"]
            await sync_to_async(cart.update)(other, lambda items: [*items, "x"])
            assert await ws.receive_nothing(timeout=0.2)  # another session's change
            await cart.aupdate(mine, lambda items: [*items, "y"])
            assert (await next_frame(ws))["value"] == ["mine", "y"]
            # No field names another session: the owner is always the connection's.
            answer = await ask(ws, type="watch", id=2, name=cart.name, scope="session", owner=other)
            assert answer["code"] == "invalid" and "owner" in answer["message"]

    run(scenario)


def test_session_state_needs_a_live_session():
    async def scenario():
        for key in (None, "no-such-session-key-0123456789"):
            async with connected(key) as ws:
                answer = await ask(ws, type="watch", id=1, name=cart.name, scope="session")
                assert answer["type"] == "error" and answer["code"] == "refused", answer
                assert "session" in answer["message"]
                assert await watch(ws, 2, score.name) == 0  # the connection still works

    run(scenario)


def test_session_state_without_session_middleware_is_refused(caplog):
    async def scenario():
        ws = WebsocketCommunicator(URLRouter(routing.websocket_urlpatterns), WS_PATH)
        assert (await ws.connect())[0]
        answer = await ask(ws, type="watch", id=1, name=cart.name, scope="session")
        assert answer["code"] == "refused"
        await ws.disconnect()

    with caplog.at_level(logging.WARNING, logger="statekit.live"):
        run(scenario)
    assert "SessionMiddlewareStack" in caplog.text


def test_unwatch_stops_the_changes_and_releases_the_subscription():
    async def scenario():
        async with connected() as ws:
            await watch(ws, 1, score.name)
            await watch(ws, 2, other.name)
            assert subscriptions() == 2
            await score.aset(1)
            await other.aset(1)
            assert [(await next_frame(ws))["id"], (await next_frame(ws))["id"]] == [1, 2]
            assert await ask(ws, type="unwatch", id=1) == {"type": "unwatched", "id": 1}
            await score.aset(2)
            assert await ws.receive_nothing(timeout=0.2)
            await other.aset(2)
            assert (await next_frame(ws))["id"] == 2
            assert subscriptions() == 1
            assert await ask(ws, type="unwatch", id=2) == {"type": "unwatched", "id": 2}
            assert subscriptions() == 0  # released before the answer
            await other.aset(3)
            assert await ws.receive_nothing(timeout=0.2)
            answer = await ask(ws, type="unwatch", id=2)
            assert (answer["type"], answer["id"], answer["code"]) == ("error", 2, "invalid")

    run(scenario)


def test_disconnect_releases_every_subscription():
    key = new_session()

    async def scenario():
        async with connected(key) as ws:
            await watch(ws, 1, score.name)
            await watch(ws, 2, cart.name, "session")
            assert subscriptions() == 2
        await released()

    run(scenario)


@override_settings(STATEKIT={"WS_MAX_WATCHES": 2, "WS_MAX_MESSAGE_BYTES": 200})
def test_limits_on_watches_and_frame_size():
    async def scenario():
        async with connected() as ws:
            await watch(ws, 1, score.name)
            await watch(ws, 2, other.name)
            answer = await ask(ws, type="watch", id=3, name=cart.name)
            assert (answer["code"], answer["id"]) == ("limit", 3)
            await ask(ws, type="unwatch", id=1)
            await watch(ws, 3, score.name)  # room again

            await ws.send_to(text_data='{"type":"watch","id":9,"name":"' + "x" * 200 + '"}')
            answer = await next_frame(ws)
            assert (answer["code"], answer["id"]) == ("limit", None)
            await ws.send_to(text_data='{"type":"unwatch","id":"' + "é" * 90 + '"}')  # >200 B
            assert (await next_frame(ws))["code"] == "limit"

    run(scenario)


BAD_FRAMES = [
    ("not json", "invalid", None),
    ("[1, 2]", "invalid", None),
    ('"watch"', "invalid", None),
    ("{}", "invalid", None),
    ('{"type": "subscribe", "id": 1}', "invalid", 1),
    ('{"type": "watch", "name": "test_live.score"}', "invalid", None),
    ('{"type": "watch", "id": true, "name": "test_live.score"}', "invalid", None),
    ('{"type": "watch", "id": 1.5, "name": "test_live.score"}', "invalid", None),
    ('{"type": "watch", "id": {"a": 1}, "name": "test_live.score"}', "invalid", None),
    ('{"type": "watch", "id": "", "name": "test_live.score"}', "invalid", None),
    ('{"type": "watch", "id": 1, "name": ["test_live.score"]}', "invalid", 1),
    ('{"type": "watch", "id": 1, "name": "test_live.score", "scope": "everything"}', "invalid", 1),
    ('{"type": "watch", "id": 1, "name": "test_live.score", "scope": 7}', "invalid", 1),
    ('{"type": "watch", "id": 1, "name": "test_live.score", "extra": 1}', "invalid", 1),
    ('{"type": "unwatch", "id": 12}', "invalid", 12),
    ("[" * 2000 + "]" * 2000, "invalid", None),  # deeper than Python's recursion limit
]


@pytest.mark.parametrize(("frame", "code", "id_"), BAD_FRAMES)
def test_a_bad_frame_gets_an_error_frame_and_the_connection_lives_on(frame, code, id_):
    async def scenario():
        async with connected() as ws:
            await ws.send_to(text_data=frame)
            answer = await next_frame(ws)
            assert answer["type"] == "error" and answer["message"]
            assert (answer["code"], answer["id"]) == (code, id_)
            assert await watch(ws, 1, score.name) == 0

    run(scenario)


def test_binary_frames_and_duplicate_ids_are_refused():
    async def scenario():
        async with connected() as ws:
            await ws.send_to(bytes_data=b'{"type": "watch"}')
            assert (await next_frame(ws))["code"] == "invalid"
            await watch(ws, "a", score.name)
            answer = await ask(ws, type="watch", id="a", name=other.name)
            assert (answer["code"], answer["id"]) == ("duplicate", "a")

    run(scenario)


class UnreachableBackend(BaseBackend):
    """A backend whose server is down: every read fails as a real outage does."""

    def get(self, key, ttl=None):
        raise BackendUnavailable("the state server does not answer")


def test_a_backend_outage_is_an_error_frame(caplog):
    async def scenario():
        async with connected() as ws:
            answer = await ask(ws, type="watch", id=1, name=score.name)
            assert (answer["type"], answer["code"]) == ("error", "unavailable")
            await ws.send_json_to({"type": "unwatch", "id": 1})  # it was not kept
            assert (await next_frame(ws))["code"] == "invalid"
            assert subscriptions() == 0

    conf = {"BACKEND": f"{__name__}.UnreachableBackend"}
    with override_settings(STATEKIT=conf), caplog.at_level(logging.WARNING, "statekit.live"):
        run(scenario)
    assert "could not be read (the state server does not answer)" in caplog.text


def test_a_value_that_no_longer_fits_its_schema_is_an_error_frame_for_good(name):
    """Not ``unavailable``: statekit.js would watch it again every few seconds, forever."""
    from statekit.backends import StateKey, get_backend

    GlobalState(name, default=0, public=True, schema=int)
    get_backend().set(StateKey("global", "", name), '"stored before the schema"', None)

    async def scenario():
        async with connected() as ws:
            return await ask(ws, type="watch", id=1, name=name)

    answer = run(scenario)
    assert (answer["code"], answer["message"]) == (
        "schema",
        f"global state {name!r} holds a value that does not fit its schema.",
    )
    assert subscriptions() == 0


@override_settings(ALLOWED_HOSTS=["testserver"])
def test_connections_from_other_origins_are_refused():
    async def scenario():
        for origin, accepted in [(b"http://evil.example", False), (b"http://testserver", True)]:
            app = SessionMiddlewareStack(URLRouter(routing.websocket_urlpatterns))
            ws = WebsocketCommunicator(app, WS_PATH, headers=[(b"origin", origin)])
            assert (await ws.connect())[0] is accepted
            await ws.disconnect()

    run(scenario)


@override_settings(STATEKIT={"WS_PATH": "/live/state/"})
def test_the_path_is_configurable():
    assert str(routing.websocket_urlpatterns[0].pattern) == "live/state/"
