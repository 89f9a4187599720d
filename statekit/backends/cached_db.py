"""The "cached_db" backend: the database is the truth, reads come from Redis.

Coherence:

- A write commits to the database, then deletes the cached copy (after the transaction
  commits, when one is open). Reads inside a transaction go to the database, and so do
  reads that slide a ttl. A cached copy never outlives the row's expiry.
- A read that misses takes a short lease on the key (``SET NX``), reads the database and
  stores the row only if its lease is still there. A write that lands meanwhile deletes the
  lease, so an old row read before that write is never cached after it.
- Redis down: reads and writes carry on against the database and a warning is logged. The
  process then knows its cache may hold values it could not delete; when Redis answers again
  it first deletes every statekit key under the prefix, then uses the cache again. Retries
  are spaced by ``RETRY_SECONDS`` so an outage does not cost a timeout per request.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from django.db import connections, transaction
from django.utils import timezone

from statekit.backends.base import Alive, StateKey
from statekit.backends.cache import REDIS_DOWN, RedisKeys, glob_literal
from statekit.backends.db import DatabaseBackend
from statekit.conf import get_settings

logger = logging.getLogger("statekit")

LEASE_MS = 5000
RETRY_SECONDS = 1.0
ABSENT = b"n"  # cached marker: the database holds no live value

# Store ARGV[2] with a lifetime of ARGV[3] ms, if our lease ARGV[1] is still on the key.
FILL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 0
"""


class CachedDatabaseBackend(DatabaseBackend):
    uses_cache = True

    def __init__(self) -> None:
        super().__init__()
        self.keys = RedisKeys()
        self.redis = self.keys.redis
        self.timeout_ms = round(get_settings()["CACHE_TIMEOUT"] * 1000)
        self._fill = self.redis.register_script(FILL)
        self._lock = threading.Lock()
        self._dirty = False  # Redis may hold copies we failed to delete
        self._retry_at = 0.0

    # -- reads -------------------------------------------------------------------------

    def get(self, key: StateKey, ttl: float | None = None) -> str | None:
        # A sliding ttl is kept by the database: such reads go there.
        if ttl is not None or connections[self.alias].in_atomic_block or not self._usable():
            return super().get(key, ttl)
        name = self.keys.key(key)
        try:
            cached = self.redis.get(name)
            if cached is not None and cached[:1] == b"v":
                return cached[1:].decode()
            if cached == ABSENT:
                return None
            lease = b"l" + secrets.token_bytes(8)
            leased = cached is None and self.redis.set(name, lease, nx=True, px=LEASE_MS)
        except REDIS_DOWN as exc:
            self._lost(exc)
            return super().get(key)
        found = self.fetch(key)
        if leased:
            self._store(name, lease, found)
        return None if found is None else found[0]

    def _store(self, name: str, lease: bytes, found: tuple[str, datetime | None] | None) -> None:
        payload, ttl_ms = ABSENT, self.timeout_ms
        if found is not None:
            text, expires_at = found
            payload = b"v" + text.encode()
            if expires_at is not None:
                left = (expires_at - timezone.now()).total_seconds() * 1000
                ttl_ms = min(ttl_ms, int(left))
        if ttl_ms <= 0:
            return
        try:
            self._fill(keys=[name], args=[lease, payload, ttl_ms])
        except REDIS_DOWN as exc:
            self._lost(exc)

    # -- writes ------------------------------------------------------------------------

    def write(
        self, key: StateKey, fn: Callable[[str | None], str | None], ttl: float | None
    ) -> tuple[str | None, str | None]:
        result = super().write(key, fn, ttl)
        self._invalidate_on_commit(key)
        return result

    def expire(self, key: StateKey, ttl: float) -> None:
        super().expire(key, ttl)
        self._invalidate_on_commit(key)

    def move_owner(self, old: str, new: str) -> None:
        super().move_owner(old, new)
        prefix = glob_literal(self.keys.prefix)
        patterns = [
            f"{prefix}:{scope}:{glob_literal(owner)}{sep}*"
            for owner in (old, new)
            for scope, sep in (("session", ":"), ("page", "."))
        ]
        transaction.on_commit(lambda: self._invalidate(*patterns), using=self.alias, robust=True)

    def orphans(
        self, scope: str, alive: Alive, dry_run: bool = False
    ) -> Iterator[list[tuple[StateKey, str | None]]]:
        for batch in super().orphans(scope, alive, dry_run):
            if not dry_run:
                self._invalidate(*(self.keys.key(key) for key, _ in batch))
            yield batch

    def _invalidate_on_commit(self, key: StateKey) -> None:
        name = self.keys.key(key)
        transaction.on_commit(lambda: self._invalidate(name), using=self.alias, robust=True)

    def _invalidate(self, *names: str) -> None:
        """Delete cached copies: names, or patterns ending in ``*``."""
        if not self._usable():
            return
        try:
            for name in names:
                if name.endswith("*"):
                    self._unlink(name)
                else:
                    self.redis.delete(name)
        except REDIS_DOWN as exc:
            self._lost(exc)

    # -- outages -----------------------------------------------------------------------

    def _lost(self, exc: Exception) -> None:
        with self._lock:
            if not self._dirty:
                logger.warning(
                    "statekit: Redis behind cache alias %r is unavailable (%s); serving "
                    "state from the database until it answers again.",
                    self.keys.cache_alias,
                    exc,
                )
            self._dirty = True
            self._retry_at = time.monotonic() + RETRY_SECONDS

    def _usable(self) -> bool:
        """Whether the cache may be used now; after an outage, flush it first."""
        if not self._dirty:
            return True
        with self._lock:
            if not self._dirty:
                return True
            if time.monotonic() < self._retry_at:
                return False
            try:
                self._unlink(f"{glob_literal(self.keys.prefix)}:*")
            except REDIS_DOWN:
                self._retry_at = time.monotonic() + RETRY_SECONDS
                return False
            self._dirty = False
        logger.warning(
            "statekit: Redis behind cache alias %r answers again; its statekit keys were deleted.",
            self.keys.cache_alias,
        )
        return True

    def _unlink(self, pattern: str) -> None:
        cursor = 0
        while True:
            cursor, names = self.redis.scan(cursor, match=pattern, count=1000)
            if names:
                self.redis.unlink(*names)
            if not cursor:
                return

    # -- inspection (the admin and ``manage.py statekit``); scan() reads the database ------

    def discard(self, key: StateKey) -> bool:
        found = super().discard(key)
        self._invalidate_on_commit(key)
        return found
