"""The "cached_db" backend: the database is the truth, reads come from Redis.

Coherence:

- A write commits to the database, then deletes the cached copy (after the transaction
  commits, when one is open). Reads inside a transaction go to the database. A cached copy
  never outlives the row's expiry, and carries it: a read with a ttl is served from the
  copy as long as the database would not extend the expiry (``slack`` in
  :mod:`statekit.backends.base`); the read that must extend it goes to the database under a
  lease that replaces the copy.
- A read that misses takes a short lease on the key (``SET NX``), reads the database and
  stores the row only if its lease is still there. A write that lands meanwhile deletes the
  lease, so an old row read before that write is never cached after it.
- Cached copies carry an *epoch* (:mod:`statekit.backends.epoch`), a counter kept in the
  database: ``w<epoch>:<expiry>:<text>`` (expiry: Unix time in ms, empty for none), or
  ``n<epoch>::`` when the database holds no live value (other forms: a miss). A
  write whose deletion did not certainly happen (Redis failed, or this process skips Redis
  while it believes it down) moves the epoch once it committed, and so does a Redis that
  restarted. A read serves a copy only if its epoch is not older than the process's view of
  the epoch, which it reads again at most every ``EPOCH_SECONDS``: every copy cached before
  a move is then a miss, in every process, with no flush. A write deletes the one key of a
  value whatever its epoch, so a process whose view lags still invalidates what the others
  cached. So whatever Redis kept or lost and whichever process wrote during an outage, no
  process serves a copy older than the database's for more than ``EPOCH_SECONDS`` (plus a
  query) once Redis answers again.
- Redis down: reads and writes carry on against the database and a warning is logged. Redis
  is tried again every ``RETRY_SECONDS``, so an outage does not cost a timeout per request.
- Database down: :class:`BackendUnavailable`, also for a cached read whose epoch is due.
- ``aget`` reads the cached copy on the event loop's own redis.asyncio client; a miss, an
  expiry to extend, an epoch due, and every write go to the database in a thread (Django's
  ORM has no native async path for it).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import NamedTuple

from django.db import connections
from django.utils import timezone

from statekit.backends.base import Alive, slack
from statekit.backends.db import DatabaseBackend
from statekit.backends.epoch import Epoch
from statekit.backends.redis import RedisKeys
from statekit.conf import get_settings
from statekit.exceptions import BackendUnavailable
from statekit.keys import StateKey

logger = logging.getLogger("statekit")

LEASE_MS = 5000
RETRY_SECONDS = 1.0
COPY = re.compile(rb"([wn])(\d+):(\d*):")  # a cached copy's head: kind, epoch, expiry

# Put lease ARGV[1] for ARGV[3] ms on a key that holds no lease ("l...") and no copy of
# epoch ARGV[2] or later, except a copy that starts with ARGV[4] (one whose expiry a read
# extends); return whether it did. Replacing a copy is always safe: what a lease stores was
# read after the lease was put, and a write since then deleted the lease.
CLAIM = """
local held = redis.call('GET', KEYS[1])
if held and (ARGV[4] == '' or string.sub(held, 1, #ARGV[4]) ~= ARGV[4]) then
  if string.sub(held, 1, 1) == 'l' then
    return 0
  end
  local epoch = string.match(held, '^[wn](%d+):')
  if epoch and tonumber(epoch) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
"""

# Store ARGV[2] with a lifetime of ARGV[3] ms, if our lease ARGV[1] is still on the key.
FILL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 0
"""


class Copy(NamedTuple):
    text: str | None  # None: the database held no live value
    expires: float | None  # the row's expiry when copied (Unix time), None for none
    head: bytes  # "w<epoch>:<expiry>:": a read that extends the expiry replaces this copy

    def stale_for(self, ttl: float | None) -> bool:
        """Whether a read with ``ttl`` must extend the expiry: the database's, not this."""
        if ttl is None or self.expires is None:
            return False
        return time.time() + ttl - self.expires > slack(ttl)


def _copy(cached: bytes | str | None, epoch: int) -> Copy | None:
    """The cached copy in ``cached``, or None when it is no copy of ``epoch`` or later (a
    miss, a lease, a copy from before a move or from an older statekit)."""
    if not isinstance(cached, bytes):  # None (statekit's clients answer bytes)
        return None
    copy = COPY.match(cached)
    if copy is None or int(copy[2]) < epoch:
        return None
    text = cached[copy.end() :].decode() if copy[1] == b"w" else None
    return Copy(text, int(copy[3]) / 1000 if copy[3] else None, copy[0])


class CachedDatabaseBackend(DatabaseBackend):
    uses_cache = True

    def __init__(self) -> None:
        super().__init__()
        self.keys = RedisKeys()
        self.redis = self.keys.redis
        self.timeout_ms = round(get_settings()["CACHE_TIMEOUT"] * 1000)
        self._claim = self.redis.register_script(CLAIM)
        self._fill = self.redis.register_script(FILL)
        self.epoch = Epoch(self.alias, self.redis)
        self.aredis = self.keys.loop_clients()
        self._skip_until = 0.0  # Redis failed: until then, the database alone serves
        self._outage = False  # a warning was logged and Redis has not answered since

    # -- reads -------------------------------------------------------------------------

    def get(self, key: StateKey, ttl: float | None = None) -> str | None:
        if connections[self.alias].in_atomic_block or not self._usable():
            return super().get(key, ttl)
        name = self.keys.key(key)
        with self.keys.reach.fallback(self._lost) as attempt:
            epoch = self.epoch.current()
            copy = _copy(self.redis.get(name), epoch)
            self._answered()
            if copy is not None and not copy.stale_for(ttl):
                return copy.text
            lease = b"l" + secrets.token_bytes(8)
            replace = b"" if copy is None else copy.head
            leased = self._claim(keys=[name], args=[lease, epoch, LEASE_MS, replace])
        if attempt.lost:
            return super().get(key, ttl)
        found = self.fetch(key, ttl)
        if leased:
            self._store(name, lease, epoch, found)
        return None if found is None else found[0]

    async def aget(self, key: StateKey, ttl: float | None = None) -> str | None:
        epoch = self.epoch.fresh()
        if epoch is None or self.aredis is None or not self._usable():
            return await super().aget(key, ttl)
        async with self.keys.reach.fallback(self._lost):
            conn = await self.aredis.get()
            cached = await conn.client.get(self.keys.key(key))
            self._answered()
            copy = _copy(cached, epoch)
            if copy is not None and not copy.stale_for(ttl):
                return copy.text
        return await super().aget(key, ttl)  # the database, under a lease

    def _store(
        self, name: str, lease: bytes, epoch: int, found: tuple[str, datetime | None] | None
    ) -> None:
        payload, ttl_ms = b"n%d::" % epoch, self.timeout_ms
        if found is not None:
            text, expires_at = found
            expiry = b""
            if expires_at is not None:
                expiry = b"%d" % int(expires_at.timestamp() * 1000)  # rounded down: not later
                left = (expires_at - timezone.now()).total_seconds() * 1000
                ttl_ms = min(ttl_ms, int(left))
            payload = b"w%d:%s:" % (epoch, expiry) + text.encode()
        if ttl_ms <= 0:
            return
        with self.keys.reach.fallback(self._lost):
            self._fill(keys=[name], args=[lease, payload, ttl_ms])

    # -- writes ------------------------------------------------------------------------

    @contextmanager
    def _invalidating(self, names: list[str]) -> Iterator[None]:
        """Invalidate ``names`` after the block (once its transaction commits), also when
        the database failed: the write may have committed all the same."""
        try:
            yield
        except BackendUnavailable:
            self.after_write(lambda: self._invalidate(names))
            raise
        self.after_write(lambda: self._invalidate(names))

    def writing(self, key: StateKey) -> AbstractContextManager[None]:
        # Each write: the database's statement(s), then one cache round trip.
        return self._invalidating([self.keys.key(key)])

    def expire(self, key: StateKey, ttl: float) -> None:
        with self._invalidating([self.keys.key(key)]):
            super().expire(key, ttl)

    def discard(self, key: StateKey) -> bool:
        with self._invalidating([self.keys.key(key)]):
            return super().discard(key)

    def move_owner(self, old: str, new: str) -> None:
        patterns = [*self.keys.of_session(old), *self.keys.of_session(new)]
        with self._invalidating(patterns):
            super().move_owner(old, new)

    def orphans(
        self, alive: Alive, dry_run: bool = False
    ) -> Iterator[Sequence[tuple[StateKey, str | None]]]:
        for batch in super().orphans(alive, dry_run):
            if not dry_run:
                self._invalidate([self.keys.key(key) for key, _ in batch])
            yield batch

    def _invalidate(self, names: list[str]) -> None:
        """Delete cached copies; if that did not certainly happen, move the epoch, which
        turns every cached copy into a miss."""
        if self._usable():
            with self.keys.reach.fallback(self._lost) as attempt:
                for name in names:
                    if name.endswith("*"):
                        self._unlink(name)
                    else:
                        self.redis.delete(name)
            if not attempt.lost:
                return
        self.epoch.bump()

    def _unlink(self, pattern: str) -> None:
        for names in self.keys.scan(pattern):
            self.redis.unlink(*names)

    # -- outages -----------------------------------------------------------------------

    def _lost(self, exc: Exception) -> None:
        self._skip_until = time.monotonic() + RETRY_SECONDS
        if not self._outage:
            self._outage = True
            logger.warning(
                "statekit: %s is unavailable (%s); serving state from the database "
                "until it answers again.",
                self.keys.where,
                exc,
            )

    def _answered(self) -> None:
        if self._outage and time.monotonic() >= self._skip_until:
            self._outage = False
            logger.info("statekit: %s answers again.", self.keys.where)

    def _usable(self) -> bool:
        """Whether to use Redis now: not while an outage is being waited out."""
        return time.monotonic() >= self._skip_until
