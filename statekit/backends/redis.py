"""The one place statekit talks to Redis from: the client behind a Django cache alias, the
names of statekit's keys in it, and the one translation of "Redis cannot be reached" into
:class:`~statekit.exceptions.BackendUnavailable` (:class:`Reach`)."""

from __future__ import annotations

from types import TracebackType

from django.core.cache import BaseCache, caches
from django.core.exceptions import ImproperlyConfigured
from redis import Redis
from redis.exceptions import ConnectionError, TimeoutError

from statekit.conf import get_settings
from statekit.exceptions import BackendUnavailable
from statekit.keys import Scope, StateKey, pages_of

REDIS_DOWN = (ConnectionError, TimeoutError)
SCAN_BATCH = 1000


def redis_client(cache: BaseCache) -> Redis | None:
    """The redis-py client behind a Django cache, or ``None`` if it is not Redis."""
    client = getattr(cache, "client", None)
    if hasattr(client, "get_client"):  # django-redis
        return client.get_client(write=True)
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
        parts = text[len(self.prefix) + 1 :].split(":", 2)
        if len(parts) != 3 or parts[0] not in Scope.values:
            return None
        return StateKey(*parts)


def text_of(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode()


def glob_literal(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


class Reach:
    """``with reach: ...``: a Redis that cannot be reached (connection refused or lost, a
    timeout) raises BackendUnavailable, naming the cache alias, from the original error."""

    __slots__ = ("alias",)

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if isinstance(exc, REDIS_DOWN):
            raise BackendUnavailable(
                f"statekit cannot reach Redis behind cache alias {self.alias!r}: {exc}"
            ) from exc
        return False
