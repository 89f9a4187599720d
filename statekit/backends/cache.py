"""The "cache" backend: values live in Redis only, behind a Django cache alias.

It talks to the Redis client of the cache (django-redis, or Django's own RedisCache) so it
can use Redis's atomic operations and native expiry. Values are stored as statekit's JSON
text, not pickled. A Redis that cannot be reached raises :class:`BackendUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from redis.exceptions import (
    NoScriptError,
    ResponseError,
    WatchError,
)

from statekit.backends.base import Alive, Entry, Updater, matches
from statekit.backends.cache_async import CacheCore, counter, millis, small
from statekit.backends.redis import SCAN_BATCH, glob_literal, text_of
from statekit.backends.redis_text import Undecodable
from statekit.keys import EXPIRED, Scope, StateKey, session_of


def _when(due: float | None) -> datetime | None:
    if due is None:
        return None
    try:
        return datetime.fromtimestamp(due / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):  # an expiry set outside statekit
        return datetime.max.replace(tzinfo=UTC) if due > 0 else datetime.min.replace(tzinfo=UTC)


class CacheBackend(CacheCore):
    def _undecodable(self, operation: str) -> Undecodable:
        return Undecodable(self.keys.prefix, operation, self.keys.parse)

    def _run(self, name: str, keys: Sequence[bytes | str], args: list[Any] | None = None) -> Any:
        script = self.lua[name]
        with self.reach:
            try:  # EVALSHA directly: redis-py's Script.__call__ costs more than the call
                return self.redis.evalsha(script.sha, len(keys), *keys, *(args or ()))
            except NoScriptError:  # Redis restarted or flushed its scripts
                return script(keys=keys, args=args or [])

    def get(self, key: StateKey, ttl: float | None = None) -> str | None:
        if key.scope == Scope.GLOBAL:  # never expires: a plain GET
            with self.reach:
                return text_of(self.redis.get(self.keys.key(key)))
        return text_of(self._run("READ", [self.keys.key(key), self.index], [millis(ttl)]))

    def set(self, key: StateKey, text: str, ttl: float | None) -> str | None:
        keys = [self.keys.key(key), self.index, self._grave(key)]
        return text_of(self._run("SET", keys, [text, millis(ttl)]))

    def update(self, key: StateKey, fn: Updater, ttl: float | None) -> tuple[str | None, str]:
        with self.reach:
            return self._update(self.keys.key(key), key, fn, ttl)

    def _update(
        self, name: str, key: StateKey, fn: Updater, ttl: float | None
    ) -> tuple[str | None, str]:
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(name)  # type: ignore[no-untyped-call]  # redis-py: unannotated
                    peeked = self.lua["PEEK"](keys=[name, self.index], client=pipe)
                    done = self._stage(pipe, name, key, peeked, fn, ttl)
                    pipe.execute()
                    return done
                except WatchError:
                    continue

    def incr(
        self, key: StateKey, amount: int | float | Decimal, default: str, ttl: float | None
    ) -> tuple[str | None, str]:
        if counter(key, amount, default):  # one INCRBY, as fast as Redis goes
            try:
                with self.reach:
                    new = self.redis.incrby(self.keys.key(key), int(amount))  # counter(): an int
            except ResponseError:  # not an integer Redis can add to: the general path
                pass
            else:
                return str(new - amount), str(new)
        if small(amount):
            keys = [self.keys.key(key), self.index, self._grave(key)]
            # The script takes bases of up to 18 characters: with |amount| < 2**62 the sum
            # always fits Redis's 64-bit integers.
            done = self._run("INCR", keys, [amount, default, millis(ttl)])
            if done:
                return text_of(done[0]), str(done[1])
        return super().incr(key, amount, default, ttl)

    def delete(self, key: StateKey) -> str | None:
        return text_of(self._run("DELETE", [self.keys.key(key), self.index, self._grave(key)]))

    def expire(self, key: StateKey, ttl: float) -> None:
        # Not millis(): for EXPIRE, 0 is "due now", not "no ttl" (rounded up, it was due 1 ms
        # later, so a read or a cleanup in that millisecond still found the value live).
        self._run("EXPIRE", [self.keys.key(key), self.index], [max(0, round(ttl * 1000))])

    def move_owner(self, old: str, new: str) -> None:
        for pattern in self.keys.of_session(old):
            with self.reach:
                names = list(self.redis.scan_iter(match=pattern, count=SCAN_BATCH))
            with self._undecodable("moving a session's state") as bad:
                for raw, key in bad.keys(names).items():
                    moved = key._replace(owner=new + key.owner[len(old) :])
                    self._run("MOVE", [raw, self.keys.key(moved), self.index])

    def count_expired(self) -> int:
        with self.reach:
            seconds, micros = self.redis.time()
            return self.redis.zcount(self.index, "-inf", seconds * 1000 + micros // 1000)

    def pop_expired(self, limit: int) -> list[tuple[StateKey, str]]:
        with self._undecodable("the cleanup") as bad:
            while flat := self._run("POP", [self.index], [limit]):
                if popped := bad.pairs(flat):  # never [] while some were due
                    return popped
        return []

    def orphans(
        self, scope: str, alive: Alive, dry_run: bool = False
    ) -> Iterator[Sequence[tuple[StateKey, str | None]]]:
        cursor = 0
        with self._undecodable("the cleanup") as bad:
            while True:
                with self.reach:
                    cursor, names = self.redis.scan(
                        cursor,
                        match=f"{glob_literal(self.keys.prefix)}:{scope}:*",
                        count=SCAN_BATCH,
                    )
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
        with self.reach:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.time()
                for raw, _ in found:
                    pipe.get(raw)
                    pipe.zscore(self.index, raw)
                (seconds, micros), *replies = pipe.execute()
        now = seconds * 1000 + micros // 1000
        entries = []
        for (_, key), text, due in zip(found, replies[::2], replies[1::2], strict=True):
            value = None if text is None else bad.text(text)
            if value is None:  # deleted since it was found, or not UTF-8
                continue
            if key.scope == Scope.GLOBAL:  # never expires (get() ignores the index)
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
                    with self.reach:
                        cursor, names = self.redis.scan(cursor, match=pattern, count=SCAN_BATCH)
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
        with self.reach:
            with self.redis.pipeline() as pipe:  # MULTI: the value and its index entry
                pipe.delete(name)
                pipe.zrem(self.index, name)
                deleted, _ = pipe.execute()
        return bool(deleted)
