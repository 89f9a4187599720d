"""``variable.changes()`` (issue 15, item 2): the current value, then every change made by any
process, on every backend against its real server; latest value wins; nothing stays
subscribed once the iterator is closed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from contextlib import aclosing
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from statekit import GlobalState, SessionState
from statekit.streams.feeds import LocalHub, hub
from statekit.streams.hub import RESYNC
from tests.conftest import ALL_BACKENDS
from tests.live_support import run

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30  # a guard against a hang, not a measure


def write_elsewhere(backend, name: str, value: object) -> None:
    """Set public global ``name`` to ``value`` in another process (tests/stream_worker.py)."""
    alias = getattr(backend, "alias", "default")
    setup = {
        "databases": {alias: connections[alias].settings_dict["NAME"]},
        "statekit": settings.STATEKIT,
    }
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tests.stream_worker", "set", json.dumps(setup, default=str)]
    done = subprocess.run(
        [*command, name, json.dumps(value)], cwd=ROOT, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_changes_yields_the_value_then_each_change(backend, name):
    visitors = GlobalState(name, default=0, public=True)
    visitors.set(1)

    async def scenario():
        async with aclosing(visitors.changes()) as values:
            seen = [await anext(values)]
            await visitors.aset(2)
            seen.append(await asyncio.wait_for(anext(values), TIMEOUT))
            await visitors.aset(2)  # the same content: nothing
            await visitors.adelete()  # back to the default
            seen.append(await asyncio.wait_for(anext(values), TIMEOUT))
            assert hub().count() == 1
        return seen

    assert run(scenario) == [1, 2, 0]
    assert hub().count() == 0  # closed: unsubscribed


#: The backends whose changes cross processes (db on SQLite streams one process's: README).
ACROSS_PROCESSES = [param for param in ALL_BACKENDS if param.id != "db-sqlite"]


@pytest.mark.parametrize("backend", ACROSS_PROCESSES, indirect=True)
def test_a_change_made_by_another_process_arrives(backend, name):
    assert not isinstance(hub(), LocalHub)
    visitors = GlobalState(name, default=0, public=True)

    async def scenario():
        async with aclosing(visitors.changes()) as values:
            first = await anext(values)
            await asyncio.to_thread(write_elsewhere, backend, name, 7)
            return first, await asyncio.wait_for(anext(values), TIMEOUT)

    assert run(scenario) == (0, 7)


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_session_changes_follow_the_owner_only(backend, name):
    cart = SessionState(name, default=list)
    mine, theirs = SessionStore(), SessionStore()
    mine.create()
    theirs.create()

    async def scenario():
        async with aclosing(cart.changes(mine.session_key)) as values:
            first = await anext(values)
            await cart.aset(theirs.session_key, ["not mine"])
            await cart.aset(mine.session_key, ["tea"])
            return first, await asyncio.wait_for(anext(values), TIMEOUT)

    assert run(scenario) == ([], ["tea"])


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_a_slow_reader_gets_the_latest_value_not_a_backlog(backend, name):
    """One slot per subscription: 300 changes unread leave the newest, once."""
    counter = GlobalState(name, default=0, public=True)
    key = counter.key_for()

    async def scenario():
        slow, fast = hub().subscribe(key), hub().subscribe(key)
        try:
            while not hub().ready:  # else its RESYNC may come after "end", over it
                await asyncio.sleep(0.01)
            for _ in range(300):
                await counter.aincr()
            await counter.aset("end")
            while await asyncio.wait_for(fast.next(), TIMEOUT) != '"end"':
                pass
            latest = await slow.next()
            if latest is RESYNC:  # the feed reconnected meanwhile: "read the value", as follow()
                latest = await backend.aget(key)
            return [latest]
        finally:
            slow.close()
            fast.close()

    assert run(scenario) == ['"end"']


@pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)
def test_changes_of_a_private_global_are_refused(backend, name):
    secret = GlobalState(name, default=0)
    with pytest.raises(ImproperlyConfigured, match="public=True"):
        secret.changes()
