"""The "cache" backend: values live in Redis only, behind a Django cache alias.

It talks to the Redis client of the cache (django-redis, or Django's own RedisCache) so it
can use Redis's atomic operations and native expiry. Values are stored as statekit's JSON
text, not pickled. A Redis that cannot be reached raises :class:`BackendUnavailable`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence, Set
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from redis.exceptions import (
    NoScriptError,
    ResponseError,
)

from statekit.backends.base import Alive, Entry, Expired, Updater, matches
from statekit.backends.cache_async import CacheCore, counter, millis, small
from statekit.backends.redis import glob_literal, text_of
from statekit.backends.redis_text import Undecodable
from statekit.keys import EXPIRED, EXPIRING, Scope, StateKey, session_of


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
        keys = [self.keys.key(key), self.keys.index(key)]
        return text_of(self._run("READ", keys, [millis(ttl)]))

    def set(self, key: StateKey, text: str, ttl: float | None) -> str | None:
        keys = self._triple(key)
        return text_of(self._run("SET", keys, [text, millis(ttl)]))

    def update(self, key: StateKey, fn: Updater, ttl: float | None) -> tuple[str | None, str]:
        while True:  # read, compute, write if nothing was written meanwhile (SWAP)
            peeked = self._run("PEEK", self._triple(key)[:2])
            old, new, args = self._swap_args(peeked, fn, ttl)
            if self._run("SWAP", self._triple(key), args):
                return old, new

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
            keys = self._triple(key)
            # The script takes bases of up to 18 characters: with |amount| < 2**62 the sum
            # always fits Redis's 64-bit integers.
            done = self._run("INCR", keys, [amount, default, millis(ttl)])
            if done:
                return text_of(done[0]), str(done[1])
        return super().incr(key, amount, default, ttl)

    def delete(self, key: StateKey) -> str | None:
        return text_of(self._run("DELETE", self._triple(key)))

    def expire(self, key: StateKey, ttl: float) -> None:
        # Not millis(): for EXPIRE, 0 is "due now", not "no ttl" (rounded up, it was due 1 ms
        # later, so a read or a cleanup in that millisecond still found the value live).
        keys = [self.keys.key(key), self.keys.index(key)]
        self._run("EXPIRE", keys, [max(0, round(ttl * 1000))])

    def move_owner(self, old: str, new: str) -> None:
        for pattern in self.keys.of_session(old):
            with self.reach:
                names = [name for batch in self.keys.scan(pattern) for name in batch]
            with self._undecodable("moving a session's state") as bad:
                for raw, key in bad.keys(names).items():
                    self._move(raw, key, key._replace(owner=new + key.owner[len(old) :]))

    def _move(self, raw: bytes | str, key: StateKey, moved: StateKey) -> None:
        index = self.keys.index(key)
        if not self.keys.nodes:  # one Redis: one atomic RENAME
            self._run("MOVE", [raw, self.keys.key(moved), index])
            return
        # A cluster: the new key is in another slot. Copy, then delete the old key if it
        # still holds what was copied (a crash between leaves an orphan the cleanup takes).
        value, due, _ = self._run("PEEK", [raw, index])
        if value is not None:
            self._run("PLACE", [self.keys.key(moved), self.keys.index(moved)], [value, due or ""])
            self._run("DROP", [raw, index], [value])

    def _due_now(self) -> tuple[list[str], list[int]]:
        """The indexes and how many values are due in each (those with none left out)."""
        with self.reach:
            seconds, micros = self.redis.time()
            now = seconds * 1000 + micros // 1000
            indexes = self.keys.indexes()
            with self.redis.pipeline(transaction=False) as pipe:
                for index in indexes:
                    pipe.zcount(index, "-inf", now)
                counts = pipe.execute()
        due = [(index, count) for index, count in zip(indexes, counts, strict=True) if count]
        return [index for index, _ in due], [count for _, count in due]

    def count_expired(self) -> int:
        return sum(self._due_now()[1])

    def clear_expired(self, batch_size: int, keep: Set[tuple[str, str]]) -> Iterator[Expired]:
        # Every value is read: a Redis Lua script deletes and returns them in one call.
        with self._undecodable("the cleanup") as bad:
            for index in self._due_now()[0]:
                while flat := self._run("POP", [index], [batch_size]):
                    if popped := bad.pairs(flat):  # never [] while some were due
                        yield Expired(Counter(), popped)

    def orphans(
        self, alive: Alive, dry_run: bool = False
    ) -> Iterator[Sequence[tuple[StateKey, str | None]]]:
        with self._undecodable("the cleanup") as bad:
            patterns = [self.keys.pattern(glob_literal(scope), "*", "*") for scope in EXPIRING]
            for names in (batch for pattern in patterns for batch in self._scanning(pattern)):
                keys = bad.keys(names)
                living = alive({session_of(k.owner) for k in keys.values()})
                doomed = [raw for raw, k in keys.items() if session_of(k.owner) not in living]
                if not doomed:
                    continue
                if dry_run:
                    yield [(keys[raw], None) for raw in doomed]
                    continue
                by_index: dict[str, list[bytes | str]] = {}
                for raw in doomed:
                    by_index.setdefault(self.keys.index(keys[raw]), []).append(raw)
                yield [
                    pair
                    for index, names in by_index.items()
                    for pair in bad.pairs(self._run("TAKE", [index, *names]))
                ]

    def _scanning(self, pattern: str) -> Iterator[list[bytes | str]]:
        """Batches of the names ``pattern`` matches (every master's), Redis errors as
        BackendUnavailable."""
        names = self.keys.scan(pattern)
        while True:
            with self.reach:
                batch = next(names, None)
            if batch is None:
                return
            yield batch

    # -- inspection (the admin and ``manage.py statekit``) ---------------------------------

    def _patterns(
        self, scope: str | None, name: str | None, owner: str | None, expired: bool | None
    ) -> list[tuple[str, bool]]:
        """MATCH patterns that narrow a scan (``scan`` checks each key exactly after), each
        with whether to skip buried keys it finds (another pattern finds those)."""
        s = glob_literal(scope) if scope else "*"
        o = f"{glob_literal(owner)}*" if owner else "*"
        n = glob_literal(name) if name else "*"
        live = self.keys.pattern(s, o, n)
        if expired is False:  # buried values are dead: never wanted
            return [(live, True)]
        buried = self.keys.pattern(EXPIRED, o, f"{s}:{n}:*")
        return [(live, True), (buried, False)]

    def _entries(self, found: list[tuple[bytes | str, StateKey]], bad: Undecodable) -> list[Entry]:
        """The entries of ``found`` (Redis key, parsed key) that still exist: TIME for
        Redis's clock, then GET and ZSCORE per key in one round trip (per master). A value
        that is not UTF-8 is skipped (counted in ``bad``)."""
        with self.reach:
            seconds, micros = self.redis.time()
            with self.redis.pipeline(transaction=False) as pipe:
                for raw, key in found:
                    pipe.get(raw)
                    pipe.zscore(self.keys.index(key), raw)
                replies = pipe.execute()
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
                for names in self._scanning(pattern):
                    found = [
                        (raw, key)
                        for raw, key in bad.keys(names).items()
                        if not (skip_buried and key.scope == EXPIRED)
                        and matches(key, scope, name, owner)
                    ]
                    for entry in self._entries(found, bad) if found else ():
                        if expired is None or entry.expired == expired:
                            yield entry

    def entry(self, key: StateKey) -> Entry | None:
        with self._undecodable("reading a value") as bad:
            found = self._entries([(self.keys.key(key), key)], bad)
        return found[0] if found else None

    def discard(self, key: StateKey) -> bool:
        # TAKE: the value and its index entry, at once.
        return bool(self._run("TAKE", [self.keys.index(key), self.keys.key(key)]))
