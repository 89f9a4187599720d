"""The async iterator behind ``variable.changes()``: the current value, then every change.

:func:`follow` subscribes first, then reads, so no change between the read and the
subscription is lost. It yields stored texts (``None``: no value stored), each different from
the one before: a write that stores the same content, or a resync that finds the value
unchanged, yields nothing. Latest value wins: a consumer slower than the changes skips
intermediate values (:class:`~statekit.streams.hub.Subscription` holds one).

The subscription is released when the iterator is closed: ``aclose()``, the end of an
``async for`` that broke out, or the task running it cancelled (a client that went away).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.db import connections

from statekit.backends import BaseBackend
from statekit.keys import Scope, StateKey, session_of
from statekit.streams.feeds import apublish, hub
from statekit.streams.hub import ENDED, RESYNC, session_end_key

#: Reads the stored text of the key (``None`` when absent), e.g. ``backend.aget``.
Reader = Callable[[], Awaitable[str | None]]


#: Attempts of a read after the feed reconnected (the server restarted: the first use of each
#: pooled connection may fail), and the pause before each further one, in seconds.
RESYNC_ATTEMPTS = 3
RESYNC_PAUSE = 0.2


#: Reads in flight per event loop: a thousand streams opened at once (clients reconnecting
#: after a deploy) or resyncing together would otherwise take a thousand pooled connections.
READS_IN_FLIGHT = 16
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def _read(read: Reader) -> str | None:
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(READS_IN_FLIGHT)
    async with gate:
        return await read()


#: The threads of the database backends' stream reads: a stream lasts as long as its page,
#: and a read in the thread of the request that opened it would keep a database connection
#: there until the response ends. Here at most READS_IN_FLIGHT connections, which nobody
#: else uses, closed after each read as at a request's end (CONN_MAX_AGE holds).
_readers = ThreadPoolExecutor(READS_IN_FLIGHT, thread_name_prefix="statekit-stream-read")


def reader(backend: BaseBackend, key: StateKey, ttl: float | None) -> Reader:
    """How a stream reads ``key``: the backend's own async read (Redis), or its sync read in
    a thread of :data:`_readers` (the database backends)."""
    if not backend.uses_database:
        return lambda: backend.aget(key, ttl)

    def get() -> str | None:
        try:
            return backend.get(key, ttl)
        finally:
            close_connections(obsolete_only=True)

    return sync_to_async(get, thread_sensitive=False, executor=_readers)


def close_connections(obsolete_only: bool = False) -> None:
    """Close this thread's database connections, but one in a transaction: all of them, or
    (``obsolete_only``) those Django closes when a request ends (past ``CONN_MAX_AGE``, or
    broken)."""
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            continue
        if obsolete_only:
            connection.close_if_unusable_or_obsolete()
        else:
            connection.close()


async def _resync(read: Reader) -> str | None:
    for attempt in range(RESYNC_ATTEMPTS):
        try:
            return await _read(read)
        except Exception:
            if attempt == RESYNC_ATTEMPTS - 1:
                raise
            await asyncio.sleep(RESYNC_PAUSE * attempt)
    raise AssertionError("unreachable")


async def follow(key: StateKey, read: Reader) -> AsyncGenerator[str | None]:
    """The stored text of ``key`` now, then at every change made by any process. A read that
    fails (the backend is down) raises :class:`~statekit.exceptions.BackendUnavailable`.
    Session and page state end with their session: at logout, or when login gives it a new
    key (:func:`session_over`), the iterator ends (the values moved away or are gone)."""
    owner = None if key.scope == Scope.GLOBAL else session_end_key(session_of(key.owner))
    subscription = hub().subscribe(key, ends_with=owner)
    try:
        last = await _read(read)
        yield last
        while True:
            item = await subscription.next()
            if item is ENDED:
                return
            text = await _resync(read) if item is RESYNC else item
            if text != last:
                last = text
                yield text
    finally:
        subscription.close()


def session_over(session_key: str) -> None:
    """The session ``session_key`` ended (logout) or has a new key (login): the streams of
    its session and page state end, in every process, so their clients follow again with
    the session they have now (an event stream's browser reconnects by itself)."""
    hub().publish(session_end_key(session_key), None)


async def asession_over(session_key: str) -> None:
    await apublish(session_end_key(session_key), None)
