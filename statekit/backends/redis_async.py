"""redis.asyncio clients for statekit's async paths: one client per event loop
(:class:`LoopClients`), built from a sync client's connection settings or by a cluster's
factory, with the Lua scripts registered on it."""

from __future__ import annotations

import asyncio
import inspect
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import Any, NamedTuple

from redis import ConnectionPool, Redis
from redis import asyncio as aredis
from redis import connection as sync_connection
from redis.asyncio import connection as async_connection
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript


class AsyncRedis(NamedTuple):
    """The redis.asyncio client of one event loop, with the Lua scripts registered on it."""

    client: aredis.Redis | AsyncRedisCluster
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
    TLS, pool size) of a sync client (:meth:`of`) or by a cluster's ``make``, and never used
    in another loop. A client is closed
    when its loop shuts down its async generators (``asyncio.run``, asgiref's
    ``async_to_sync``, ASGI servers); one whose loop was closed without that is dropped at
    the next look-up. :meth:`of` gives ``None`` for a client it cannot rebuild (Sentinel, a
    custom pool or connection class): the caller then keeps to threads.
    """

    def __init__(
        self, make: Callable[[], aredis.Redis | AsyncRedisCluster], lua: dict[str, str]
    ) -> None:
        self._make = make  # a new client (for the running loop)
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
        accepted = _parameters(twin)
        settings = {
            k: v
            for k, v in pool.connection_kwargs.items()
            if k in accepted and (k in SETTINGS or k.startswith("ssl_"))
        }
        settings["max_connections"] = pool.max_connections

        def make() -> aredis.Redis:
            pool = aredis.ConnectionPool(connection_class=twin, **settings)
            return aredis.Redis(connection_pool=pool)

        return cls(make, lua or {})

    async def get(self) -> AsyncRedis:
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        return found[0] if found is not None else await self._open(loop)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> AsyncRedis:
        client = self._make()
        found = AsyncRedis(client, {n: client.register_script(c) for n, c in self._lua.items()})
        closer = self._closing(loop, client)
        await anext(closer)  # now the loop knows it: it closes it when it shuts down
        with self._lock:
            for ended in [other for other in self._by_loop if other.is_closed()]:
                del self._by_loop[ended]
            self._by_loop[loop] = (found, closer)
        return found

    async def _closing(
        self, loop: asyncio.AbstractEventLoop, client: aredis.Redis | AsyncRedisCluster
    ) -> AsyncGenerator[None]:
        try:
            yield
        finally:
            with self._lock:
                self._by_loop.pop(loop, None)
            if isinstance(client, aredis.Redis):
                await client.aclose(close_connection_pool=True)
            else:
                await client.aclose()
