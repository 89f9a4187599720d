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
import contextvars
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

from statekit.keys import StateKey
from statekit.streams.feeds import hub
from statekit.streams.hub import RESYNC

#: Reads the stored text of the key (``None`` when absent), e.g. ``backend.aget``.
Reader = Callable[[], Coroutine[Any, Any, str | None]]


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
        # In a context of its own: a stream lasts as long as its page, and a read in the
        # context of the request that opened it would keep a database connection open in
        # that request's thread until the response ends. Here the db backend's reads share
        # the process's one thread for sync work outside requests, and its connection.
        return await asyncio.create_task(read(), context=contextvars.Context())


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
    fails (the backend is down) raises :class:`~statekit.exceptions.BackendUnavailable`."""
    subscription = hub().subscribe(key)
    try:
        last = await _read(read)
        yield last
        while True:
            item = await subscription.next()
            text = await _resync(read) if item is RESYNC else item
            if text != last:
                last = text
                yield text
    finally:
        subscription.close()
