"""The one place statekit talks to Redis from: the client behind a Django cache alias, or of
the Redis Cluster of ``STATEKIT["REDIS_CLUSTER"]`` (and their redis.asyncio twins, one per
event loop: :mod:`statekit.backends.redis_async`), the names of statekit's keys in it, and
the one translation of "Redis cannot be reached" into
:class:`~statekit.exceptions.BackendUnavailable` (:class:`Reach`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from types import TracebackType
from typing import Any, TypeGuard, cast

from django.core.cache import BaseCache, caches
from django.core.exceptions import ImproperlyConfigured
from redis import Redis
from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError, TimeoutError

from statekit.backends.cluster import (
    CLUSTER_DOWN,
    async_cluster_client,
    cluster_client,
    nodes_of,
    shown,
    unreachable_cluster,
)
from statekit.backends.redis_async import LoopClients
from statekit.conf import get_settings
from statekit.exceptions import BackendUnavailable, StateTypeError
from statekit.keys import SHARDS, Scope, StateKey, pages_of, parse_key, shard_of

REDIS_DOWN = (ConnectionError, TimeoutError, *CLUSTER_DOWN)
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
        try:
            return parse_key(text)
        except StateTypeError:
            return None

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


def down(exc: BaseException | None) -> TypeGuard[Exception]:
    """Whether ``exc`` says Redis cannot be reached (or a cluster cannot serve a slot)."""
    return isinstance(exc, REDIS_DOWN) or unreachable_cluster(exc)


class Reach:
    """``with reach: ...`` or ``async with reach: ...``: a Redis that cannot be reached
    (connection refused or lost, a timeout, a cluster slot without a master) raises
    BackendUnavailable, naming the cache alias or the cluster, from the original error. For
    a caller that can do without Redis, :meth:`fallback` ends the block instead."""

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
        if not down(exc):
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
