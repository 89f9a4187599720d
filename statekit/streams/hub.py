"""One process-wide subscription per feed, fanned out to the local subscribers.

A :class:`Hub` keeps the subscriptions of this process by key. Its feed (a subclass:
:mod:`statekit.streams.feeds`) runs ONE listener thread while anyone subscribes, holding one
connection to the server that carries changes between processes, and hands every change it
receives to :meth:`Hub.dispatch`. The thread ends with the last subscription.

Each :class:`Subscription` holds one slot: the latest stored text of its key, or
:data:`RESYNC` ("read the current value"). A new change overwrites the slot, so a consumer
that does not keep up gets the newest value, never a backlog: memory per subscription is one
value whatever the rate of changes. :data:`RESYNC` is offered to every subscription when the
feed (re)connects, since changes made while it was away were not seen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from statekit.keys import Scope, StateKey, key_text

logger = logging.getLogger("statekit.streams")

#: The slot value that says "read the current value": the feed may have missed changes.
RESYNC: Any = object()
#: The slot value that says "the owner's session ended or changed key": the stream ends.
ENDED: Any = object()
_EMPTY: Any = object()


def message(key: StateKey, text: str | None) -> str:
    """What a feed carries for a change: ``[key, text]`` (text ``None``: deleted)."""
    return json.dumps([key_text(key), text], ensure_ascii=False, separators=(",", ":"))


def session_end_key(session_key: str) -> StateKey:
    """The key a session's end (logout, or a new key at login) is published under: no
    variable has it (names are not empty)."""
    return StateKey(Scope.SESSION, session_key, "")


class Subscription:
    """The changes of one key, for one consumer in one event loop (see :meth:`Hub.subscribe`),
    and the end of its owner's session (``ends_with``: :data:`ENDED`)."""

    def __init__(
        self,
        hub: Hub,
        key: StateKey,
        loop: asyncio.AbstractEventLoop,
        ends_with: StateKey | None = None,
    ) -> None:
        self.hub = hub
        self.key = key
        self.keys = [key_text(k) for k in (key, ends_with) if k is not None]
        self.loop = loop
        self._lock = threading.Lock()
        self._slot: Any = _EMPTY
        self._waking = False
        self._event = asyncio.Event()

    def offer(self, item: Any) -> None:
        """From any thread: ``item`` (the stored text, None when deleted, RESYNC, or ENDED,
        which stays) becomes the latest; the consumer is woken once however many offers come
        before it runs."""
        with self._lock:
            if self._slot is not ENDED:  # the end is never overwritten
                self._slot = item
            wake, self._waking = not self._waking, True
        if wake:
            try:
                self.loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # its loop is closed: nobody reads this any more
                self.hub.unsubscribe(self)

    def _wake(self) -> None:
        with self._lock:
            self._waking = False
        self._event.set()

    async def next(self) -> Any:
        """The latest item offered since the last call (waits for one)."""
        while True:
            with self._lock:
                item, self._slot = self._slot, _EMPTY
            if item is not _EMPTY:
                return item
            self._event.clear()
            with self._lock:
                if self._slot is not _EMPTY:
                    continue
            await self._event.wait()

    def close(self) -> None:
        self.hub.unsubscribe(self)


class Hub:
    """Subscriptions by key, and the listener thread of the feed while there are any.

    Subclasses provide :meth:`publish` (in the writer's thread) and :meth:`listen` (in the
    listener thread: connect, then call :meth:`connected` and :meth:`dispatch` until ``stop()``
    is true or the connection fails; it is called again after a failure)."""

    #: Whether the feed crosses processes (False: changes reach this process's subscribers only).
    shared: ClassVar[bool] = True
    #: Seconds between attempts to connect again after a failure (doubling up to 5 s).
    retry_seconds: ClassVar[float] = 0.2

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.by_key: dict[str, set[Subscription]] = {}
        self.thread: threading.Thread | None = None
        self.ready = not self.shared
        self._down = False

    # -- subscribers -------------------------------------------------------------------------

    def subscribe(self, key: StateKey, ends_with: StateKey | None = None) -> Subscription:
        """A subscription to ``key`` in the running loop, offered ENDED when something is
        published under ``ends_with`` (:func:`session_end_key`). When the feed is not
        connected yet, it is offered RESYNC once it is (read the value after subscribing:
        nothing is lost)."""
        sub = Subscription(self, key, asyncio.get_running_loop(), ends_with)
        with self.lock:
            for text in sub.keys:
                self.by_key.setdefault(text, set()).add(sub)
            if self.thread is None and self.shared:
                self.ready = False
                self.thread = threading.Thread(
                    target=self._run, name=f"statekit-{type(self).__name__}", daemon=True
                )
                self.thread.start()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self.lock:
            for text in sub.keys:
                subs = self.by_key.get(text)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self.by_key[text]

    def count(self) -> int:
        """How many subscriptions this process holds (the admin, tests)."""
        with self.lock:
            return len({sub for subs in self.by_key.values() for sub in subs})

    def dispatch(self, key: str, item: Any) -> None:
        """Offer ``item`` to the subscriptions of ``key`` (a :func:`key_text`), and ENDED to
        those that end with it."""
        with self.lock:
            subs = list(self.by_key.get(key, ()))
        for sub in subs:
            sub.offer(item if sub.keys[0] == key else ENDED)

    def received(self, raw: str | bytes) -> None:
        """Dispatch one message of the feed (:func:`message`; ``[key]`` alone: RESYNC); one
        that is not statekit's is ignored."""
        try:
            found = json.loads(raw)
            key, item = found[0], (found[1] if len(found) > 1 else RESYNC)
        except (ValueError, TypeError, IndexError, KeyError):
            return
        if isinstance(key, str) and (item is RESYNC or item is None or isinstance(item, str)):
            self.dispatch(key, item)

    def connected(self) -> None:
        """The feed is (again) connected: every subscription reads its current value."""
        with self.lock:
            self.ready = True
            subs = list({sub for subs in self.by_key.values() for sub in subs})
        if self._down:
            self._down = False
            logger.info("statekit's change feed (%s) is connected again.", type(self).__name__)
        for sub in subs:
            sub.offer(RESYNC)

    def stopping(self) -> bool:
        """For :meth:`listen`: true once nobody subscribes (the thread then ends)."""
        with self.lock:
            if self.by_key:
                return False
            self.thread = None
            return True

    # -- the feed ----------------------------------------------------------------------------

    def publish(self, key: StateKey, text: str | None) -> None:
        raise NotImplementedError("subclasses of Hub must provide a publish() method")

    def listen(self, stop: Callable[[], bool]) -> None:
        raise NotImplementedError("subclasses of Hub must provide a listen() method")

    def failed(self, what: str, exc: BaseException) -> None:
        """Note a failure of the feed: one warning per outage, no traceback."""
        self.ready = False
        if not self._down:
            self._down = True
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            logger.warning(
                "statekit's change feed (%s) failed to %s (%s): streams resync when it is back.",
                type(self).__name__,
                what,
                reason,
            )

    def _run(self) -> None:
        delay = self.retry_seconds
        pause = threading.Event()  # never set: a sleep
        while not self.stopping():
            try:
                self.listen(self.stopping)
                return  # stopping() said so, and cleared self.thread
            except Exception as exc:
                delay = self.retry_seconds if self.ready else min(delay * 2, 5.0)
                self.failed("listen", exc)
            pause.wait(delay)
