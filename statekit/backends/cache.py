"""The "cache" backend: values live in Redis only, behind a Django cache alias.

It talks to the Redis client of the cache (django-redis, or Django's own RedisCache) so it
can use Redis's atomic operations and native expiry. Values are stored as statekit's JSON
text, not pickled. A Redis that cannot be reached raises :class:`BackendUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from django.core.cache import BaseCache, caches
from django.core.exceptions import ImproperlyConfigured
from redis import Redis
from redis.exceptions import ConnectionError, ResponseError, TimeoutError, WatchError

from statekit.backends.base import BaseBackend, StateKey, Updater
from statekit.conf import get_settings
from statekit.exceptions import BackendUnavailable

REDIS_DOWN = (ConnectionError, TimeoutError)

# Integer increment in one round trip. Returns {old, new}, or false when the stored (or
# default) value is not a Redis-sized integer, so the caller falls back to update().
INCR = """
local old = redis.call('GET', KEYS[1])
local base = old or ARGV[2]
if not string.match(base, '^%-?%d+$') or string.len(base) > 18 then return false end
if not old then redis.call('SET', KEYS[1], base) end
local new = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[3] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {old or false, new}
"""


def redis_client(cache: BaseCache) -> Redis | None:
    """The redis-py client behind a Django cache, or ``None`` if it is not Redis."""
    client = getattr(cache, "client", None)
    if hasattr(client, "get_client"):  # django-redis
        return client.get_client(write=True)
    from django.core.cache.backends.redis import RedisCache

    if isinstance(cache, RedisCache):
        return cache._cache.get_client(write=True)
    return None


def _ms(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, round(ttl * 1000))


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

    def key(self, key: StateKey) -> str:
        return f"{self.prefix}:{key.scope}:{key.owner}:{key.name}"


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode()


class CacheBackend(BaseBackend):
    uses_cache = True

    def __init__(self) -> None:
        self.keys = RedisKeys()
        self.redis = self.keys.redis
        self._incr = self.redis.register_script(INCR)

    @contextmanager
    def _available(self) -> Iterator[None]:
        try:
            yield
        except REDIS_DOWN as exc:
            raise BackendUnavailable(
                f"statekit cannot reach Redis behind cache alias {self.keys.cache_alias!r}: {exc}"
            ) from exc

    def get(self, key: StateKey) -> str | None:
        with self._available():
            return _text(self.redis.get(self.keys.key(key)))

    def set(self, key: StateKey, text: str, ttl: float | None) -> str | None:
        with self._available():
            return _text(self.redis.set(self.keys.key(key), text, px=_ms(ttl), get=True))

    def update(self, key: StateKey, fn: Updater, ttl: float | None) -> tuple[str | None, str]:
        name = self.keys.key(key)
        with self._available(), self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(name)
                    old = _text(pipe.get(name))
                    new = fn(old)
                    pipe.multi()
                    pipe.set(name, new, px=_ms(ttl))
                    pipe.execute()
                    return old, new
                except WatchError:
                    continue

    def incr(
        self, key: StateKey, amount: int | float | Decimal, default: str, ttl: float | None
    ) -> tuple[str | None, str]:
        if type(amount) is int and abs(amount) < 2**62:
            try:
                with self._available():
                    done = self._incr(
                        keys=[self.keys.key(key)], args=[amount, default, _ms(ttl) or 0]
                    )
            except ResponseError:  # the sum overflows a 64-bit integer
                done = None
            if done:
                return _text(done[0]), str(done[1])
        return super().incr(key, amount, default, ttl)

    def delete(self, key: StateKey) -> str | None:
        with self._available():
            return _text(self.redis.getdel(self.keys.key(key)))

    def clear_expired(self) -> int:
        return 0  # Redis expires keys itself.
