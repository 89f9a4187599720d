"""The epoch of ``cached_db``'s Redis keys: a counter in the database (``CacheEpoch``).

Moving to a new epoch makes every cached copy unreachable at once, in every process, with no
flush: the keys carry the epoch, and old keys die by their timeout. The epoch moves when a
write's deletion of its cached copy did not certainly happen, and when Redis is another
server than the one the row last saw (its ``run_id`` changes when it restarts or fails
over; on a Redis Cluster, any master's: a replica promoted by a failover has its own), since
a Redis restarted from a snapshot or an append-only file not yet synced, or a replica that
had not yet received the last writes, may hold copies that were deleted before. Each
process reads the row again at most every ``EPOCH_SECONDS``: one query (and one ``INFO``
per master) per process and period, not per read.
"""

from __future__ import annotations

import threading
import time

from django.db.models import F

from statekit.backends.cluster import server_id
from statekit.backends.db_reach import reachable
from statekit.backends.redis import Client
from statekit.models import CacheEpoch

EPOCH_SECONDS = 0.5
ROW = 1


class Epoch:
    """One process's view of the epoch of the database ``alias``, for the Redis ``redis``."""

    def __init__(self, alias: str, redis: Client) -> None:
        self.alias = alias
        self.redis = redis
        self.value = 0
        self._due = 0.0  # when (time.monotonic()) to read the row again
        self._lock = threading.Lock()

    def current(self) -> int:
        """The epoch, read again if due. Raises BackendUnavailable if the database cannot
        be reached, and redis-py's errors if Redis cannot."""
        if (value := self.fresh()) is not None:
            return value
        with self._lock:
            started = time.monotonic()
            if started >= self._due:
                self.value = self._read()
                self._due = started + EPOCH_SECONDS
        return self.value

    def fresh(self) -> int | None:
        """The epoch if it is not due to be read again (no query), else None."""
        return self.value if time.monotonic() < self._due else None

    @reachable
    def _read(self) -> int:
        rows = CacheEpoch.objects.using(self.alias).filter(pk=ROW)
        value, known = rows.values_list("value", "redis_run_id").first() or (0, "")
        run_id = server_id(self.redis)
        if run_id is not None and run_id != known:
            self.bump(run_id=run_id, known=known)
            value = rows.values_list("value", flat=True).first() or 0
        return value

    @reachable
    def bump(self, run_id: str | None = None, known: str = "") -> None:
        """Move to a new epoch. With ``run_id``: record it, unless the row no longer holds
        ``known`` (another process saw the new Redis first and moved the epoch)."""
        rows = CacheEpoch.objects.using(self.alias).filter(pk=ROW)
        if run_id is None:
            done = rows.update(value=F("value") + 1)
        else:
            done = rows.filter(redis_run_id=known).update(value=F("value") + 1, redis_run_id=run_id)
        if not done:  # no row yet (a new database), or another process moved it first
            rows.get_or_create(pk=ROW, defaults={"value": 1, "redis_run_id": run_id or ""})
        self._due = 0.0  # read the new epoch before the next cached read
