"""The "cache" backend: values live in Redis only, behind a Django cache alias.

It talks to the Redis client of the cache (django-redis, or Django's own RedisCache) so it
can use Redis's atomic operations and native expiry. Values are stored as statekit's JSON
text, not pickled. A Redis that cannot be reached raises :class:`BackendUnavailable`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.exceptions import ImproperlyConfigured
from redis import Redis
from redis.exceptions import (
    ConnectionError,
    NoScriptError,
    ResponseError,
    TimeoutError,
    WatchError,
)

from statekit.backends import scripts as lua
from statekit.backends.base import (
    EXPIRED,
    Alive,
    BaseBackend,
    Entry,
    StateKey,
    Updater,
    matches,
    session_of,
)
from statekit.backends.redis_text import Undecodable
from statekit.backends.scripts import GRACE_MS
from statekit.conf import get_settings
from statekit.exceptions import BackendUnavailable

REDIS_DOWN = (ConnectionError, TimeoutError)
SCAN_BATCH = 1000
SCOPES = ("global", "session", "page", EXPIRED)


def redis_client(cache: BaseCache) -> Redis | None:
    """The redis-py client behind a Django cache, or ``None`` if it is not Redis."""
    client = getattr(cache, "client", None)
    if hasattr(client, "get_client"):  # django-redis
        return client.get_client(write=True)
    from django.core.cache.backends.redis import RedisCache

    if isinstance(cache, RedisCache):
        return cache._cache.get_client(write=True)
    return None


def _ms(ttl: float | None) -> int:
    """Milliseconds for Redis; 0 means no ttl."""
    return 0 if ttl is None else max(1, round(ttl * 1000))


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

    def parse(self, text: str) -> StateKey | None:
        """The key of a value, or None for the index and other keys that are not values."""
        parts = text[len(self.prefix) + 1 :].split(":", 2)
        if len(parts) != 3 or parts[0] not in SCOPES:
            return None
        return StateKey(*parts)


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode()


def glob_literal(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _when(due: float | None) -> datetime | None:
    if due is None:
        return None
    try:
        return datetime.fromtimestamp(due / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):  # an expiry set outside statekit
        return datetime.max.replace(tzinfo=UTC) if due > 0 else datetime.min.replace(tzinfo=UTC)


class CacheBackend(BaseBackend):
    uses_cache = True

    def __init__(self) -> None:
        self.keys = RedisKeys()
        self.redis = self.keys.redis
        self.index = f"{self.keys.prefix}:due"
        scripts = {
            name: getattr(lua, name)
            for name in ("READ", "SET", "DELETE", "INCR", "PEEK", "EXPIRE", "POP", "TAKE", "MOVE")
        }
        self.lua = {name: self.redis.register_script(code) for name, code in scripts.items()}

    def _undecodable(self, operation: str) -> Undecodable:
        return Undecodable(self.keys.prefix, operation, self.keys.parse)

    def _down(self, exc: Exception) -> BackendUnavailable:
        return BackendUnavailable(
            f"statekit cannot reach Redis behind cache alias {self.keys.cache_alias!r}: {exc}"
        )

    def _grave(self, key: StateKey) -> str:
        """Where a dead, unclaimed value waits for its on_expire callback."""
        name = f"{key.scope}:{key.name}:{secrets.token_hex(6)}"
        return self.keys.key(StateKey(EXPIRED, key.owner, name))

    def _run(self, name: str, keys: list[str], args: list[Any] | None = None) -> Any:
        script = self.lua[name]
        try:
            try:  # EVALSHA directly: redis-py's Script.__call__ costs more than the call
                return self.redis.evalsha(script.sha, len(keys), *keys, *(args or ()))
            except NoScriptError:  # Redis restarted or flushed its scripts
                return script(keys=keys, args=args or [])
        except REDIS_DOWN as exc:
            raise self._down(exc) from exc

    def get(self, key: StateKey, ttl: float | None = None) -> str | None:
        if key.scope == "global":  # never expires: a plain GET
            try:
                return _text(self.redis.get(self.keys.key(key)))
            except REDIS_DOWN as exc:
                raise self._down(exc) from exc
        return _text(self._run("READ", [self.keys.key(key), self.index], [_ms(ttl)]))

    def set(self, key: StateKey, text: str, ttl: float | None) -> str | None:
        keys = [self.keys.key(key), self.index, self._grave(key)]
        return _text(self._run("SET", keys, [text, _ms(ttl)]))

    def update(self, key: StateKey, fn: Updater, ttl: float | None) -> tuple[str | None, str]:
        try:
            return self._update(self.keys.key(key), key, fn, ttl)
        except REDIS_DOWN as exc:
            raise self._down(exc) from exc

    def _update(
        self, name: str, key: StateKey, fn: Updater, ttl: float | None
    ) -> tuple[str | None, str]:
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(name)
                    value, due, now = self.lua["PEEK"](keys=[name, self.index], client=pipe)
                    dead = value is not None and due is not None and due <= now
                    old = None if dead else _text(value)
                    new = fn(old)
                    pipe.multi()
                    if dead:
                        grave = self._grave(key)
                        pipe.set(grave, value, px=GRACE_MS)
                        pipe.zadd(self.index, {grave: now})
                    if ttl is not None:
                        pipe.set(name, new, px=_ms(ttl) + GRACE_MS)
                        pipe.zadd(self.index, {name: now + _ms(ttl)})
                    elif old is not None:  # a live value keeps its expiry
                        pipe.set(name, new, keepttl=True)
                    else:
                        pipe.set(name, new)
                        pipe.zrem(self.index, name)
                    pipe.execute()
                    return old, new
                except WatchError:
                    continue

    def incr(
        self, key: StateKey, amount: int | float | Decimal, default: str, ttl: float | None
    ) -> tuple[str | None, str]:
        if type(amount) is int and abs(amount) < 2**62 and key.scope == "global" and default == "0":
            # A counter: one INCRBY, as fast as Redis goes. An absent value counts as its
            # default, 0, so the previous value is exactly new - amount.
            try:
                new = self.redis.incrby(self.keys.key(key), amount)
            except ResponseError:  # not an integer Redis can add to: the general path
                pass
            except REDIS_DOWN as exc:
                raise self._down(exc) from exc
            else:
                return str(new - amount), str(new)
        if type(amount) is int and abs(amount) < 2**62:
            keys = [self.keys.key(key), self.index, self._grave(key)]
            # The script takes bases of up to 18 characters: with |amount| < 2**62 the sum
            # always fits Redis's 64-bit integers.
            done = self._run("INCR", keys, [amount, default, _ms(ttl)])
            if done:
                return _text(done[0]), str(done[1])
        return super().incr(key, amount, default, ttl)

    def delete(self, key: StateKey) -> str | None:
        return _text(self._run("DELETE", [self.keys.key(key), self.index, self._grave(key)]))

    def expire(self, key: StateKey, ttl: float) -> None:
        # Not _ms(): for EXPIRE, 0 is "due now", not "no ttl" (rounded up, it was due 1 ms
        # later, so a read or a cleanup in that millisecond still found the value live).
        self._run("EXPIRE", [self.keys.key(key), self.index], [max(0, round(ttl * 1000))])

    def move_owner(self, old: str, new: str) -> None:
        prefix, owner = glob_literal(self.keys.prefix), glob_literal(old)
        for pattern in (f"{prefix}:session:{owner}:*", f"{prefix}:page:{owner}.*"):
            try:
                names = list(self.redis.scan_iter(match=pattern, count=SCAN_BATCH))
            except REDIS_DOWN as exc:
                raise self._down(exc) from exc
            with self._undecodable("moving a session's state") as bad:
                for raw, key in bad.keys(names).items():
                    moved = key._replace(owner=new + key.owner[len(old) :])
                    self._run("MOVE", [raw, self.keys.key(moved), self.index])

    def count_expired(self) -> int:
        try:
            seconds, micros = self.redis.time()
            return self.redis.zcount(self.index, "-inf", seconds * 1000 + micros // 1000)
        except REDIS_DOWN as exc:
            raise self._down(exc) from exc

    def pop_expired(self, limit: int) -> list[tuple[StateKey, str]]:
        with self._undecodable("the cleanup") as bad:
            while flat := self._run("POP", [self.index], [limit]):
                if popped := bad.pairs(flat):  # never [] while some were due
                    return popped
        return []

    def orphans(
        self, scope: str, alive: Alive, dry_run: bool = False
    ) -> Iterator[list[tuple[StateKey, str | None]]]:
        cursor = 0
        with self._undecodable("the cleanup") as bad:
            while True:
                try:
                    cursor, names = self.redis.scan(
                        cursor,
                        match=f"{glob_literal(self.keys.prefix)}:{scope}:*",
                        count=SCAN_BATCH,
                    )
                except REDIS_DOWN as exc:
                    raise self._down(exc) from exc
                keys = bad.keys(names)
                living = alive({session_of(k.owner) for k in keys.values()})
                doomed = [raw for raw, k in keys.items() if session_of(k.owner) not in living]
                if doomed:
                    if dry_run:
                        yield [(keys[raw], None) for raw in doomed]
                    else:
                        yield bad.pairs(self._run("TAKE", [self.index, *doomed]))
                if not cursor:
                    return

    # -- inspection (the admin and ``manage.py statekit``) ---------------------------------

    def _patterns(
        self, scope: str | None, name: str | None, owner: str | None, expired: bool | None
    ) -> list[tuple[str, bool]]:
        """MATCH patterns that narrow a scan (``scan`` checks each key exactly after), each
        with whether to skip buried keys it finds (another pattern finds those)."""
        prefix = glob_literal(self.keys.prefix)
        s = glob_literal(scope) if scope else "*"
        o = f"{glob_literal(owner)}*" if owner else "*"
        n = glob_literal(name) if name else "*"
        live = f"{prefix}:{s}:{o}:{n}"
        if expired is False:  # buried values are dead: never wanted
            return [(live, True)]
        buried = f"{prefix}:{EXPIRED}:{o}:{s}:{n}:*"
        return [(live, True), (buried, False)]

    def _entries(self, found: list[tuple[bytes | str, StateKey]], bad: Undecodable) -> list[Entry]:
        """The entries of ``found`` (Redis key, parsed key) that still exist, read in one
        round trip: GET and ZSCORE per key, and TIME for Redis's clock. A value that is not
        UTF-8 is skipped (counted in ``bad``)."""
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.time()
                for raw, _ in found:
                    pipe.get(raw)
                    pipe.zscore(self.index, raw)
                (seconds, micros), *replies = pipe.execute()
        except REDIS_DOWN as exc:
            raise self._down(exc) from exc
        now = seconds * 1000 + micros // 1000
        entries = []
        for (_, key), text, due in zip(found, replies[::2], replies[1::2], strict=True):
            value = None if text is None else bad.text(text)
            if value is None:  # deleted since it was found, or not UTF-8
                continue
            if key.scope == "global":  # never expires (get() ignores the index)
                due = None
            dead = key.scope == EXPIRED or (due is not None and due <= now)
            entries.append(Entry(key, value, _when(due), dead))
        return entries

    def scan(
        self,
        scope: str | None = None,
        name: str | None = None,
        owner: str | None = None,
        *,
        expired: bool | None = False,
    ) -> Iterator[Entry]:
        # SCAN may return a key twice if Redis resizes its table meanwhile.
        with self._undecodable("a listing") as bad:
            for pattern, skip_buried in self._patterns(scope, name, owner, expired):
                cursor = 0
                while True:
                    try:
                        cursor, names = self.redis.scan(cursor, match=pattern, count=SCAN_BATCH)
                    except REDIS_DOWN as exc:
                        raise self._down(exc) from exc
                    found = [
                        (raw, key)
                        for raw, key in bad.keys(names).items()
                        if not (skip_buried and key.scope == EXPIRED)
                        and matches(key, scope, name, owner)
                    ]
                    for entry in self._entries(found, bad) if found else ():
                        if expired is None or entry.expired == expired:
                            yield entry
                    if not cursor:
                        break

    def entry(self, key: StateKey) -> Entry | None:
        with self._undecodable("reading a value") as bad:
            found = self._entries([(self.keys.key(key), key)], bad)
        return found[0] if found else None

    def discard(self, key: StateKey) -> bool:
        name = self.keys.key(key)
        try:
            with self.redis.pipeline() as pipe:  # MULTI: the value and its index entry
                pipe.delete(name)
                pipe.zrem(self.index, name)
                deleted, _ = pipe.execute()
        except REDIS_DOWN as exc:
            raise self._down(exc) from exc
        return bool(deleted)
