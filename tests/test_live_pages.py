"""Watching page state: only with a page id issued to the connection's own session."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from asgiref.sync import sync_to_async

from statekit import PageState
from tests.live_support import (
    WS_PATH,
    ask,
    connected,
    new_page,
    next_frame,
    run,
    subscriptions,
    watch,
)

pytestmark = pytest.mark.django_db(transaction=True)

chat = PageState("test_live_pages.chat", default=list)


async def ask_page(ws, id_, page_id):
    return await ask(ws, type="watch", id=id_, name=chat.name, scope="page", page=page_id)


def test_a_page_watches_its_own_state():
    session, page_id, owner = new_page()
    chat.set(owner, ["hello"])

    async def scenario():
        async with connected(session) as ws:
            assert await watch(ws, 1, chat.name, "page", page=page_id) == ["hello"]
            assert subscriptions() == 1
            await sync_to_async(chat.update)(owner, lambda items: [*items, "again"])
            assert (await next_frame(ws))["value"] == ["hello", "again"]
            await chat.adelete(owner)
            assert (await next_frame(ws))["value"] == []

    run(scenario)


def test_the_page_id_may_come_in_the_url():
    session, page_id, owner = new_page()

    async def scenario():
        async with connected(session, f"{WS_PATH}?statekit_page={quote(page_id)}") as ws:
            assert await watch(ws, 1, chat.name, "page") == []
            await chat.aset(owner, ["from the url"])
            assert (await next_frame(ws))["value"] == ["from the url"]

    run(scenario)


def test_two_pages_of_one_session_are_apart():
    session, first, first_owner = new_page()
    _, second, second_owner = new_page(session)

    async def scenario():
        async with connected(session) as ws:
            await watch(ws, 1, chat.name, "page", page=first)
            await chat.aset(second_owner, ["elsewhere"])
            assert await ws.receive_nothing(timeout=0.2)
            await watch(ws, 2, chat.name, "page", page=second)  # both pages: one socket
            await chat.aset(first_owner, ["here"])
            assert await next_frame(ws) == {
                "type": "change",
                "id": 1,
                "scope": "page",
                "name": chat.name,
                "value": ["here"],
            }

    run(scenario)


def test_page_ids_of_other_sessions_and_forged_ones_are_refused():
    mine, _, _ = new_page()
    _, theirs, their_owner = new_page()
    chat.set(their_owner, ["private"])
    token, _, signature = theirs.rpartition(":")
    forged = f"{token[:-1]}{'0' if token[-1] != '0' else '1'}:{signature}"

    async def scenario():
        async with connected(mine) as ws:
            for i, page_id in enumerate([theirs, forged, "x" * 300]):
                answer = await ask(
                    ws, type="watch", id=i, name=chat.name, scope="page", page=page_id
                )
                assert (answer["type"], answer["code"]) == ("error", "refused"), answer
                assert "private" not in str(answer)
            for i, page_id in enumerate([None, 12, ""], start=10):
                answer = await ask(
                    ws, type="watch", id=i, name=chat.name, scope="page", page=page_id
                )
                assert answer["code"] == "invalid" and "page id" in answer["message"]
        async with connected(None) as ws:  # no session at all
            answer = await ask_page(ws, 1, theirs)
            assert answer["code"] == "refused"
        assert subscriptions() == 0

    run(scenario)
