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

from collections.abc import AsyncGenerator, Awaitable, Callable

from statekit.keys import StateKey
from statekit.streams.feeds import hub
from statekit.streams.hub import RESYNC

#: Reads the stored text of the key (``None`` when absent), e.g. ``backend.aget``.
Reader = Callable[[], Awaitable[str | None]]


async def follow(key: StateKey, read: Reader) -> AsyncGenerator[str | None]:
    """The stored text of ``key`` now, then at every change made by any process."""
    subscription = hub().subscribe(key)
    try:
        last = await read()
        yield last
        while True:
            item = await subscription.next()
            text = await read() if item is RESYNC else item
            if text != last:
                last = text
                yield text
    finally:
        subscription.close()
