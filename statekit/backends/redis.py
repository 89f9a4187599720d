"""The one place statekit talks to Redis from: the client behind a Django cache alias, or of
the Redis Cluster of ``STATEKIT["REDIS_CLUSTER"]`` (and their redis.asyncio twins, one per
event loop), the names of statekit's keys in it, and the one translation of "Redis cannot be
reached" into :class:`~statekit.exceptions.BackendUnavailable` (:class:`Reach`)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from itertools import islice
from types import TracebackType
from typing import Any, NamedTuple, cast

from django.core.cache import BaseCache, caches
from django.core.exceptions import ImproperlyConfigured
from redis import ConnectionPool, Redis
from redis import asyncio as aredis
from redis import connection as sync_connection
from redis.asyncio import connection as async_connection
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError, RedisClusterException, TimeoutError

from statekit.backends.cluster import (
    CLUSTER_DOWN,
    async_cluster_client,
    cluster_client,
    nodes_of,
    shown,
    unreachable_cluster,
)
from statekit.conf import get_settings
from statekit.exceptions import BackendUnavailable
from statekit.keys import SHARDS, Scope, StateKey, pages_of, shard_of

REDIS_DOWN = (ConnectionError, TimeoutError, *CLUSTER_DOWN)
#: What ``except`` catches to then ask :func:`down` (one case of RedisClusterException is).
REDIS_FAILING = (*REDIS_DOWN, RedisClusterException)
SCAN_BATCH = 1000
#: A sync client: one Redis, or a Redis Cluster.
Client = Redis | RedisCluster


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
    """Redis keys of statekit. On one Redis (the cache alias's):
    ``<cache prefix>:<KEY_PREFIX>:<scope>:<owner>:<name>``, values that can expire indexed in
    ``<prefix>:due``. On a Redis Cluster: ``<KEY_PREFIX>:{<shard>}:<scope>:<owner>:<name>``,
    with the hash tag of :func:`~statekit.keys.shard_of`, and one index per shard,
    ``<prefix>:{<shard>}:due``, in its slot: each script touches one slot. Cleanup and scans
    visit every index and every master."""

    def __init__(self) -> None:
        conf = get_settings()
        self.cache_alias: str = conf["CACHE_ALIAS"]
        self.nodes = nodes_of(conf["REDIS_CLUSTER"])
        self.redis: Client
        if self.nodes:
            self.where = f"the Redis Cluster at {shown(self.nodes)}"
            with Reach(self.where):  # redis-py reads the slot map now: no node answers?
                self.redis = cluster_client(self.nodes)
            self.prefix = str(conf["KEY_PREFIX"])
        else:
            cache = caches[self.cache_alias]
            client = redis_client(cache)
            if client is None:
                raise ImproperlyConfigured(
                    f'STATEKIT["CACHE_ALIAS"] = {self.cache_alias!r} is not a Redis cache; '
                    "statekit's cache backends need django-redis or Django's RedisCache."
                )
            self.redis = client
            self.prefix = str(cache.make_key(conf["KEY_PREFIX"]))
            self.where = f"Redis behind cache alias {self.cache_alias!r}"
        self.reach = Reach(self.where)

    def _tag(self, key: StateKey) -> str:
        return f"{{{shard_of(key)}}}:" if self.nodes else ""

    def key(self, key: StateKey) -> str:
        return f"{self.prefix}:{self._tag(key)}{key.scope}:{key.owner}:{key.name}"

    def index(self, key: StateKey) -> str:
        """The expiry index of ``key`` (in its slot)."""
        return f"{self.prefix}:{self._tag(key)}due"

    def indexes(self) -> list[str]:
        """Every expiry index."""
        if self.nodes:
            return [f"{self.prefix}:{{{shard}}}:due" for shard in range(SHARDS)]
        return [f"{self.prefix}:due"]

    def pattern(self, scope: str, owner: str, name: str) -> str:
        """A MATCH pattern of values, from glob patterns of their parts."""
        tags = "{*}:" if self.nodes else ""
        return f"{glob_literal(self.prefix)}:{tags}{scope}:{owner}:{name}"

    def of_session(self, session_key: str) -> list[str]:
        """MATCH patterns of the values of a session: its session state, its pages' state."""
        return [
            self.pattern(Scope.SESSION, glob_literal(session_key), "*"),
            self.pattern(Scope.PAGE, f"{glob_literal(pages_of(session_key))}*", "*"),
        ]

    def parse(self, raw: bytes | str) -> StateKey | None:
        """The key of a value, or None for the index and other keys that are not values
        (raises UnicodeDecodeError for bytes that are not UTF-8: see redis_text)."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        text = text[len(self.prefix) + 1 :]
        if self.nodes:
            tag, _, text = text.partition("}:")
            if not tag.startswith("{"):
                return None
        parts = text.split(":", 2)
        if len(parts) != 3 or parts[0] not in Scope.values:
            return None
        return StateKey(*parts)

    def scan(self, pattern: str) -> Iterator[list[bytes | str]]:
        """The names that match ``pattern``, in batches, from every master of a cluster."""
        return batches(self.redis.scan_iter(match=pattern, count=SCAN_BATCH), SCAN_BATCH)

    def loop_clients(self, lua: dict[str, str] | None = None) -> LoopClients | None:
        """The redis.asyncio clients (see :class:`LoopClients`), or None."""
        if self.nodes:
            return LoopClients(lambda: async_cluster_client(self.nodes), lua or {})
        assert isinstance(self.redis, Redis)
        return LoopClients.of(self.redis, lua)


def batches(items: Iterable[bytes | str], size: int) -> Iterator[list[bytes | str]]:
    """``items`` in lists of at most ``size``."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def text_of(raw: bytes | str | None) -> str | None:
    """A reply as text (redis-py types replies as either: statekit's clients give bytes)."""
    return raw if raw is None or isinstance(raw, str) else raw.decode()


def glob_literal(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def down(exc: BaseException | None) -> bool:
    """Whether ``exc`` says Redis cannot be reached (or a cluster cannot serve a slot)."""
    return isinstance(exc, REDIS_DOWN) or unreachable_cluster(exc)


class Reach:
    """``with reach: ...`` or ``async with reach: ...``: a Redis that cannot be reached
    (connection refused or lost, a timeout, a cluster slot without a master) raises
    BackendUnavailable, naming the cache alias or the cluster, from the original error."""

    __slots__ = ("where",)

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if down(exc):
            raise BackendUnavailable(f"statekit cannot reach {self.where}: {exc}") from exc

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(kind, exc, tb)


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
