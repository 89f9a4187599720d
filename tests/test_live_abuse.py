"""Hostile and slow websocket clients, at the consumer: bounded in flight, the latest value when
a client catches up, one watch per variable, refused frames leave nothing, never a 1011."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statekit import GlobalState
from statekit.live.consumer import StateConsumer
from statekit.live.outbox import CLOSE_TOO_SLOW
from tests.live_support import (
    ask,
    connected,
    next_frame,
    run,
    subscriptions,
    watch,
)

pytestmark = pytest.mark.django_db(transaction=True)

ticker = GlobalState("test_live_abuse.ticker", default=0, public=True)
other = GlobalState("test_live_abuse.other", default=0, public=True)


async def unread(ws: WebsocketCommunicator, timeout: float = 1) -> dict[str, Any]:
    """The next frame, as a client that does not acknowledge it (the ack token kept)."""
    return json.loads(await ws.receive_from(timeout=timeout))


async def closed_with(ws: WebsocketCommunicator, timeout: float = 10) -> int:
    """Skip the frames until the server closes the connection; return the close code."""
    while True:
        output = await ws.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return output.get("code", 1000)


def test_a_lone_surrogate_is_refused_and_leaves_nothing_registered():
    async def scenario():
        async with connected() as ws:
            for fields in (
                '"id":"\\ud800"',  # an escape
                '"id":"\ud800"',  # the code point itself
                '"id":1,"page":"\\udfff"',
            ):
                await ws.send_to(text_data=f'{{"type":"watch",{fields},"name":"{ticker.name}"}}')
                answer = await next_frame(ws)
                assert (answer["type"], answer["code"], answer["id"]) == ("error", "invalid", None)
            assert subscriptions() == 0
            await ticker.aset(1)  # before: this change closed the connection with 1011
            assert await ws.receive_nothing(timeout=0.3)
            assert await watch(ws, 1, ticker.name) == 1  # and the connection lives on

    run(scenario)


def test_a_variable_is_watched_once_per_connection():
    async def scenario():
        async with connected() as ws:
            await watch(ws, 1, ticker.name)
            for i in range(2, 6):
                answer = await ask(ws, type="watch", id=i, name=ticker.name)
                assert (answer["code"], answer["id"]) == ("duplicate", i)
                assert "(id 1)" in answer["message"]
            await ticker.aset(7)
            assert await next_frame(ws) == {
                "type": "change",
                "id": 1,
                "scope": "global",
                "name": ticker.name,
                "value": 7,
            }
            assert await ws.receive_nothing(timeout=0.3)  # once, not five times

    run(scenario)


def test_a_client_behind_gets_the_latest_value_when_it_catches_up(monkeypatch):
    monkeypatch.setattr(StateConsumer, "window_frames", 3)

    async def scenario():
        async with connected() as ws:
            await ws.send_json_to({"type": "watch", "id": 1, "name": ticker.name})
            await ws.send_json_to({"type": "watch", "id": 2, "name": other.name})
            first = [await unread(ws), await unread(ws)]
            for i in range(1, 41):
                await ticker.aset(i)
                await other.aset(-i)
            frames = [await unread(ws)]  # the window: three frames unacknowledged
            assert await ws.receive_nothing(timeout=0.5)  # the rest held back
            assert [f["value"] for f in first + frames] == [0, 0, 1]
            await ws.send_json_to({"type": "ack", "ack": frames[-1]["ack"]})
            caught_up = [await unread(ws), await unread(ws)]
            assert await ws.receive_nothing(timeout=0.5)
            # Each watch: its latest value, once; never the 38 changes in between.
            assert {(f["id"], f["type"], f["value"]) for f in caught_up} == {
                (1, "change", 40),
                (2, "change", -40),
            }
            await ws.send_json_to({"type": "ack", "ack": caught_up[-1]["ack"]})
            await ticker.aset(41)
            assert (await unread(ws))["value"] == 41  # live again

    run(scenario)


def test_acks_must_be_tokens_of_frames_in_flight():
    async def scenario():
        async with connected() as ws:
            await ws.send_json_to({"type": "watch", "id": 1, "name": ticker.name})
            token = (await unread(ws))["ack"]
            for bad in ("nope", 5, None, token):  # the last: acknowledged just before
                if bad == token:
                    await ws.send_json_to({"type": "ack", "ack": token})
                await ws.send_json_to({"type": "ack", "ack": bad})
                answer = await unread(ws)
                assert (answer["type"], answer["code"]) == ("error", "invalid")
                await ws.send_json_to({"type": "ack", "ack": answer["ack"]})

    run(scenario)


def test_a_client_that_stops_reading_is_closed_as_too_slow(monkeypatch):
    monkeypatch.setattr(StateConsumer, "window_frames", 2)
    monkeypatch.setattr(StateConsumer, "slow_seconds", 0.5)

    async def scenario():
        async with connected() as ws:
            await ws.send_json_to({"type": "watch", "id": 1, "name": ticker.name})
            for i in range(1, 6):
                await ticker.aset(i)
            assert await closed_with(ws) == CLOSE_TOO_SLOW

    run(scenario)


def test_a_flood_of_frames_without_reading_the_answers_is_closed(monkeypatch):
    monkeypatch.setattr(StateConsumer, "max_frames", 10)

    async def scenario():
        async with connected() as ws:
            for i in range(200):
                await ws.send_to(text_data="not json" if i % 2 else '{"type":"unwatch","id":1}')
            assert await closed_with(ws) == CLOSE_TOO_SLOW
            answered = 0
            while not await ws.receive_nothing(timeout=0.1):
                answered += 1  # pragma: no cover (nothing is sent after the close)
            assert answered == 0

    run(scenario)


frame_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
frames = st.fixed_dictionaries(
    {"type": st.sampled_from(["watch", "unwatch", "ack", "x"]) | frame_values},
    optional={
        "id": st.integers() | st.text(max_size=70) | frame_values,
        "name": st.sampled_from([ticker.name, other.name]) | st.text(max_size=10),
        "scope": st.sampled_from(["global", "session", "page"]) | frame_values,
        "page": st.text(max_size=10) | frame_values,
        "ack": st.text(max_size=10) | frame_values,
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(frames, max_size=8))
def test_no_client_input_breaks_the_connection(batch):
    async def scenario():
        async with connected() as ws:
            for frame in batch:  # json.dumps escapes: "\ud800" reaches the server as such
                answer = await ask(ws, **frame) if "ws" not in frame else None
                assert answer is not None and answer.get("code") != "internal", answer
            await ticker.aincr()  # a change for whatever the batch watched
            while not await ws.receive_nothing(timeout=0.1):
                assert (await next_frame(ws))["type"] == "change"
            answer = await ask(ws, type="unwatch", id="sentinel")  # the connection lives
            assert (answer["type"], answer["code"]) == ("error", "invalid")

    run(scenario)
