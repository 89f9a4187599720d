"""Session resources: objects that cannot be serialized (a lock, a model, a connection).

``session_resource(factory, ttl=..., on_close=..., max_size=...)`` returns a pool; its
``get(request)`` builds the object once per session *in this process* and returns the same
instance after. It is closed (``on_close(obj)``, else ``obj.close()`` if it has one) when:

- the session ends (``flush()``/logout through the statekit middleware, or expiry and
  ``clearsessions``, noticed by the sweep);
- it was not used for ``ttl`` seconds;
- the pool holds ``max_size`` objects and a newer one evicts the least recently used.

Closing a page does not close it: a navigation or a reload closes the page before the next
one asks for it, and the session's other tabs may use it.

Closing happens in one background thread per process (:mod:`statekit.lifecycle.closing`:
bounded, :func:`drain` waits for it), which also sweeps every
``STATEKIT["RESOURCE_SWEEP_SECONDS"]``. ``get`` never returns an object that left the pool
(closed or closing).
Resources are local to a process by nature: with several workers, each builds its own for
the sessions it serves.

:class:`ResourcePool` is the machinery; :mod:`statekit.lifecycle.page_resources` keys it by
page instead.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.dispatch import receiver
from django.http import HttpRequest

from statekit.keys import renamed, session_of
from statekit.lifecycle.closing import (
    close_later,
    drain,  # noqa: F401 (the README's path for it)
    every_sweep,
    start,
)
from statekit.lifecycle.sessions import alive
from statekit.signals import page_closed, session_ended, session_moved
from statekit.state.sessions import session_key as key_of
from statekit.state.variable import positive_seconds

logger = logging.getLogger("statekit")

_MISSING = object()
_pools: weakref.WeakSet[ResourcePool] = weakref.WeakSet()


class _Entry:
    """One owner's object. ``obj`` and ``removed`` change under the pool's lock, so that
    whoever sees both the object built and the entry removed closes it: exactly once."""

    __slots__ = ("failed", "lock", "obj", "removed", "used")

    def __init__(self) -> None:
        self.obj: Any = _MISSING
        self.used = time.monotonic()
        self.lock = threading.Lock()  # held while the factory builds obj
        self.removed = False
        self.failed = False  # its factory raised: it left the pool, waiters start again


class ResourcePool:
    """One object per owner (a key), in this process: built once, closed exactly once.
    Subclasses say what owns the object (:meth:`_owner`): a session, or a page."""

    kind = "resource"  # for messages: "session_resource", "page_resource"

    def __init__(
        self,
        factory: Callable[[], Any],
        *,
        ttl: float | timedelta | None = None,
        on_close: Callable[[Any], Any] | None = None,
        max_size: int = 1000,
    ) -> None:
        if not callable(factory) or (on_close is not None and not callable(on_close)):
            raise ImproperlyConfigured(f"{self.kind}() needs a callable factory and on_close.")
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ImproperlyConfigured(f"max_size must be a positive integer, not {max_size!r}.")
        self.factory = factory
        self.ttl = positive_seconds(ttl, f"ttl of {self.kind}()")
        self.on_close = on_close
        self.max_size = max_size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        _pools.add(self)
        start()

    def __repr__(self) -> str:
        return f"{self.kind}({getattr(self.factory, '__qualname__', self.factory)!r})"

    def __len__(self) -> int:
        return len(self._entries)

    def _owner(self, owner: Any) -> str:
        """The key of ``owner``'s object."""
        raise NotImplementedError("subclasses of ResourcePool must provide an _owner() method")

    def get(self, owner: Any) -> Any:
        """The owner's object, built on first use (once, whatever the threads)."""
        start()  # again after a fork (a preloading server): the child has no thread
        key = self._owner(owner)
        for attempt in itertools.count():
            again = attempt < 3  # else: a pool too small for its requests, take what is there
            with self._lock:
                entry = self._entries.get(key)
                evicted = []
                if entry is None:
                    entry = self._entries[key] = _Entry()
                    evicted = self._remove(self._evicted())
                entry.used = time.monotonic()
                self._entries.move_to_end(key)
            close_later(self._close, evicted)
            with entry.lock:
                if entry.failed or (entry.removed and again):  # its build failed, or it left
                    continue  # the pool (closed, or closing): start again with the pool's entry
                if entry.obj is _MISSING:
                    try:
                        obj = self.factory()
                    except BaseException:
                        entry.failed = True
                        self._drop(key, entry)
                        raise
                    with self._lock:
                        entry.obj = obj
                        ended = entry.removed  # it left the pool while being built
                    if ended:
                        close_later(self._close, [obj])
                        if again:
                            continue
                return entry.obj
        raise AssertionError("unreachable")

    async def aget(self, owner: Any) -> Any:
        # In the request's thread, as the session and page id it reads: a thread of a pool
        # would keep their database connection after the request, and a broken one forever.
        return await sync_to_async(self.get)(owner)

    def _evicted(self) -> list[_Entry]:
        """Pop the least recently used entries over max_size (under the lock)."""
        return [self._entries.popitem(last=False)[1] for _ in range(len(self) - self.max_size)]

    def _remove(self, entries: list[_Entry]) -> list[Any]:
        """Mark popped entries removed (under the lock); the objects built, to close."""
        for entry in entries:
            entry.removed = True
        return [entry.obj for entry in entries if entry.obj is not _MISSING]

    def _drop(self, key: str, entry: _Entry) -> None:
        with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]

    def _take(self, doomed: Callable[[str, _Entry], bool]) -> None:
        with self._lock:
            keys = [key for key, entry in self._entries.items() if doomed(key, entry)]
            closing = self._remove([self._entries.pop(key) for key in keys])
        close_later(self._close, closing)

    def _move(self, old: str, new: str) -> None:
        """The session's key changed (login): its objects follow it."""
        with self._lock:
            for key in [key for key in self._entries if session_of(key) == old]:
                self._entries[renamed(key, old, new)] = self._entries.pop(key)

    def _sweep(self, alive: Callable[[set[str]], set[str]]) -> None:
        now = time.monotonic()
        with self._lock:
            sessions = {session_of(key) for key in self._entries}
        try:
            living = alive(sessions)
        except Exception:  # the session store is down: the ttl still applies
            logger.warning("statekit: the %s sweep could not read the sessions.", self.kind)
            living = sessions
        ttl = self.ttl

        def doomed(key: str, entry: _Entry) -> bool:
            session = session_of(key)  # not one added meanwhile:
            idle = ttl is not None and now - entry.used > ttl
            return (session in sessions and session not in living) or idle

        self._take(doomed)

    def _close(self, obj: Any) -> None:
        try:
            if self.on_close is not None:
                self.on_close(obj)
            elif callable(getattr(obj, "close", None)):
                obj.close()
        except Exception:
            logger.exception("statekit: closing the %s %r failed.", self.kind, obj)


class SessionResource(ResourcePool):
    """One object per session, shared by its tabs."""

    kind = "session_resource"

    def _owner(self, owner: HttpRequest) -> str:
        return key_of(owner, self)

    def close(self, session_key: str) -> None:
        """Close this session's object now (in the background)."""
        self._take(lambda key, entry: key == session_key)


def session_resource(
    factory: Callable[[], Any],
    *,
    ttl: float | timedelta | None = None,
    on_close: Callable[[Any], Any] | None = None,
    max_size: int = 1000,
) -> SessionResource:
    """A pool of one ``factory()`` object per session, in this process (see module doc)."""
    return SessionResource(factory, ttl=ttl, on_close=on_close, max_size=max_size)


@receiver(session_ended)
def _session_ended(*, session_key: str, **kwargs: Any) -> None:
    for pool in list(_pools):
        pool._take(lambda key, entry: session_of(key) == session_key)


@receiver(session_moved)
def _session_moved(*, old: str, new: str, **kwargs: Any) -> None:
    for pool in list(_pools):
        pool._move(old, new)


@receiver(page_closed)
def _page_closed(*, owner: str, **kwargs: Any) -> None:
    for pool in list(_pools):  # the page's own objects (page resources are keyed by page)
        pool._take(lambda key, entry: key == owner)


def any_in_use(kind: type[ResourcePool] = ResourcePool) -> bool:
    """Whether the project declares resources of ``kind`` (in the modules loaded so far)."""
    return any(isinstance(pool, kind) for pool in list(_pools))


def sweep() -> None:
    """Close idle resources and those of ended sessions (the worker runs this periodically);
    a pool whose sweep fails is logged, and the others are swept."""
    for pool in list(_pools):
        try:
            pool._sweep(alive)
        except Exception:
            logger.exception("statekit: the sweep of %r failed.", pool)


def _sweep_now() -> None:
    if not any(len(pool) for pool in list(_pools)):
        return
    try:
        sweep()
    except Exception:
        logger.exception("statekit: the session resource sweep failed.")
    finally:
        connections.close_all()  # the closing thread's connections only


every_sweep(_sweep_now)
