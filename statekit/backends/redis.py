"""The one place statekit talks to Redis from: the client behind a Django cache alias (and its
redis.asyncio twins, one per event loop), the names of statekit's keys in it, and the one
translation of "Redis cannot be reached" into
:class:`~statekit.exceptions.BackendUnavailable` (:class:`Reach`)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from types import TracebackType
from typing import Any, NamedTuple, cast

from django.core.cache import BaseCache, caches
from django.core.exceptions import ImproperlyConfigured
from redis import ConnectionPool, Redis
from redis import asyncio as aredis
from redis import connection as sync_connection
from redis.asyncio import connection as async_connection
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError, TimeoutError

from statekit.conf import get_settings
from statekit.exceptions import BackendUnavailable, StateTypeError
from statekit.keys import Scope, StateKey, pages_of, parse_key

REDIS_DOWN = (ConnectionError, TimeoutError)
SCAN_BATCH = 1000


def redis_client(cache: BaseCache) -> Redis | None:
    """The redis-py client behind a Django cache, or ``None`` if it is not Redis."""
    client: Any = getattr(cache, "client", None)  # django-redis: untyped
    if hasattr(client, "get_client"):
        return cast(Redis, client.get_client(write=True))
    from django.core.cache.backends.redis import RedisCache

    if isinstance(cache, RedisCache):
        return cache._cache.get_client(write=True)
    return None


class RedisKeys:
    """Redis keys of one cache alias: ``<cache prefix>:<KEY_PREFIX>:<scope>:<owner>:<name>``."""

    def __init__(self) -> None:
        conf = get_settings()
        self.cache_alias: str = conf["CACHE_ALIAS"]
        cache = caches[self.cache_alias]
        client = redis_client(cache)
        if client is None:
            raise ImproperlyConfigured(
                f'STATEKIT["CACHE_ALIAS"] = {self.cache_alias!r} is not a Redis cache; '
                "statekit's cache backends need django-redis or Django's RedisCache."
            )
        self.redis: Redis = client
        self.prefix = str(cache.make_key(conf["KEY_PREFIX"]))
        self.reach = Reach(self.cache_alias)

    def key(self, key: StateKey) -> str:
        return f"{self.prefix}:{key.scope}:{key.owner}:{key.name}"

    def of_session(self, session_key: str) -> list[str]:
        """MATCH patterns of the values of a session: its session state, its pages' state."""
        prefix = glob_literal(self.prefix)
        return [
            f"{prefix}:{Scope.SESSION}:{glob_literal(session_key)}:*",
            f"{prefix}:{Scope.PAGE}:{glob_literal(pages_of(session_key))}*",
        ]

    def parse(self, raw: bytes | str) -> StateKey | None:
        """The key of a value, or None for the index and other keys that are not values
        (raises UnicodeDecodeError for bytes that are not UTF-8: see redis_text)."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            return parse_key(text[len(self.prefix) + 1 :])
        except StateTypeError:
            return None


def text_of(raw: bytes | str | None) -> str | None:
    """A reply as text (redis-py types replies as either: statekit's clients give bytes)."""
    return raw if raw is None or isinstance(raw, str) else raw.decode()


def glob_literal(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


class Reach:
    """``with reach: ...`` or ``async with reach: ...``: a Redis that cannot be reached
    (connection refused or lost, a timeout) raises BackendUnavailable, naming the cache
    alias, from the original error. For a caller that can do without Redis,
    :meth:`fallback` ends the block instead."""

    __slots__ = ("alias",)

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, REDIS_DOWN):
            raise BackendUnavailable(
                f"statekit cannot reach Redis behind cache alias {self.alias!r}: {exc}"
            ) from exc

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(kind, exc, tb)

    def fallback(self, lost: Callable[[Exception], None]) -> Fallback:
        """``with reach.fallback(lost) as attempt: ...``: a Redis that cannot be reached
        ends the block quietly, hands its error to ``lost`` and sets ``attempt.lost``; the
        caller then does without Redis (cached_db: the database alone)."""
        return Fallback(lost)


class Fallback:
    """One block that may do without Redis (see :meth:`Reach.fallback`)."""

    __slots__ = ("_report", "lost")

    def __init__(self, report: Callable[[Exception], None]) -> None:
        self.lost = False  # whether Redis could not be reached in the block
        self._report = report

    def __enter__(self) -> Fallback:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if not isinstance(exc, REDIS_DOWN):
            return False
        self.lost = True
        self._report(exc)
        return True

    async def __aenter__(self) -> Fallback:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return self.__exit__(kind, exc, tb)


class AsyncRedis(NamedTuple):
    """The redis.asyncio client of one event loop, with the Lua scripts registered on it."""

    client: aredis.Redis
    lua: dict[str, AsyncScript]


#: The asyncio twin of each redis-py connection class whose settings carry over.
ASYNC_CONNECTIONS: dict[type[Any], type[AbstractConnection]] = {
    sync_connection.Connection: async_connection.Connection,
    sync_connection.SSLConnection: async_connection.SSLConnection,
    sync_connection.UnixDomainSocketConnection: async_connection.UnixDomainSocketConnection,
}


#: Connection settings that carry over to an asyncio connection (with the ``ssl_*`` ones the
#: asyncio class takes). Not the objects a sync pool keeps (its retry, parser, handlers).
SETTINGS = frozenset(
    "host port path db username password credential_provider client_name lib_name "
    "lib_version protocol encoding encoding_errors decode_responses health_check_interval "
    "retry_on_timeout retry_on_error socket_timeout socket_connect_timeout socket_keepalive "
    "socket_keepalive_options socket_read_size socket_type".split()
)


def _parameters(cls: type[Any]) -> set[str]:
    """The keyword arguments that the ``__init__`` of ``cls`` and of its bases name."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names: set[str] = set()
    for klass in cls.__mro__:
        if init := klass.__dict__.get("__init__"):
            names |= {
                p.name for p in inspect.signature(init).parameters.values() if p.kind in named
            }
    return names - {"self"}


class LoopClients:
    """``await clients.get()``: the :class:`AsyncRedis` of the running event loop.

    redis.asyncio connections belong to the loop that opened them, so each loop gets its own
    client, built from the connection settings (address, database, credentials, timeouts,
    TLS, pool size) of a sync client, and never used in another loop. A client is closed
    when its loop shuts down its async generators (``asyncio.run``, asgiref's
    ``async_to_sync``, ASGI servers); one whose loop was closed without that is dropped at
    the next look-up. :meth:`of` gives ``None`` for a client it cannot rebuild (Sentinel, a
    custom pool or connection class): the caller then keeps to threads.
    """

    def __init__(self, cls: type[AbstractConnection], pool: ConnectionPool, lua: dict[str, str]):
        accepted = _parameters(cls)
        settings = {
            k: v
            for k, v in pool.connection_kwargs.items()
            if k in accepted and (k in SETTINGS or k.startswith("ssl_"))
        }
        self._settings = {**settings, "max_connections": pool.max_connections}
        self._cls = cls
        self._lua = lua
        self._lock = threading.Lock()  # one loop per thread: look-ups race across threads
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[AsyncRedis, AsyncGenerator[None]]
        ] = weakref.WeakKeyDictionary()

    @classmethod
    def of(cls, sync: Redis, lua: dict[str, str] | None = None) -> LoopClients | None:
        pool = sync.connection_pool
        twin = ASYNC_CONNECTIONS.get(pool.connection_class)
        if type(pool) is not ConnectionPool or twin is None:
            return None
        return cls(twin, pool, lua or {})

    async def get(self) -> AsyncRedis:
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        return found[0] if found is not None else await self._open(loop)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> AsyncRedis:
        pool = aredis.ConnectionPool(connection_class=self._cls, **self._settings)
        client = aredis.Redis(connection_pool=pool)
        found = AsyncRedis(client, {n: client.register_script(c) for n, c in self._lua.items()})
        closer = self._closing(loop, client)
        await anext(closer)  # now the loop knows it: it closes it when it shuts down
        with self._lock:
            for ended in [other for other in self._by_loop if other.is_closed()]:
                del self._by_loop[ended]
            self._by_loop[loop] = (found, closer)
        return found

    async def _closing(
        self, loop: asyncio.AbstractEventLoop, client: aredis.Redis
    ) -> AsyncGenerator[None]:
        try:
            yield
        finally:
            with self._lock:
                self._by_loop.pop(loop, None)
            await client.aclose(close_connection_pool=True)
