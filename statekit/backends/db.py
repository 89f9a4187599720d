"""The "db" backend: one ``StateValue`` row per value, in ``STATEKIT["DATABASE"]``.

The common writes are one SQL statement each (:mod:`statekit.backends.sql`): ``incr`` an
upsert that adds in the database, ``delete`` (and ``set`` on PostgreSQL) of a live row. The
rest is optimistic: read the row and its version, then update only if the version is
unchanged (or insert, relying on the unique constraint), and retry otherwise. A row on which
that failed is *contended* for a moment: its writers then lock it (``SELECT ... FOR UPDATE``,
PostgreSQL) around the caller's function instead, which holds throughput as writers are
added. Tested on PostgreSQL and SQLite (3.35 or later, for RETURNING).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from time import monotonic
from typing import Any, cast

from django.db import connections, transaction
from django.db.models import Q, Value
from django.db.models.functions import Concat, Substr
from django.utils import timezone

from statekit.backends.base import BaseBackend, Updater, adding, slack
from statekit.backends.db_cleanup import CleanupQueries
from statekit.backends.db_cursor import hot_cursor
from statekit.backends.db_listing import ListingQueries
from statekit.backends.db_reach import reachable
from statekit.backends.sql import INTEGER, MAX_AMOUNT, Statements, statements
from statekit.conf import get_settings
from statekit.keys import Scope, StateKey, bury, pages_of
from statekit.models import StateValue

CONTENDED_SECONDS = 1.0  # after a lost compare-and-swap, lock the row for this long
CONTENDED_KEYS = 1024  # contended keys remembered per process, at most


def _expiry(now: datetime, ttl: float | None) -> datetime | None:
    return None if ttl is None else now + timedelta(seconds=ttl)


class DatabaseBackend(ListingQueries, CleanupQueries, BaseBackend):
    """Reads and writes here, their hot statements on :mod:`.db_cursor`'s cursor; the
    inspection queries in :mod:`.db_listing`, the cleanup's in :mod:`.db_cleanup`, the
    translation of a database that cannot be reached in :mod:`.db_reach`."""

    uses_database = True

    def __init__(self) -> None:
        self.alias: str = get_settings()["DATABASE"]
        self._contended: dict[StateKey, float] = {}  # key: until when (monotonic) to lock
        self._statements: Statements | None = None

    @reachable
    def fetch(self, key: StateKey, ttl: float | None = None) -> tuple[str, datetime | None] | None:
        """The live ``(text, expires_at)`` of ``key``, or ``None``.

        With ``ttl`` the read extends the expiry to now + ttl. To spare a write per read, it
        only does so once the expiry is short of that by more than
        :func:`~statekit.backends.base.slack`.
        """
        now = timezone.now()
        adapt = connections[self.alias].ops.adapt_datetimefield_value
        found = self._execute(self.statements().fetch, [*key, adapt(now)])
        if found is None:
            return None
        pk, text, expires_at = found
        if expires_at is not None and timezone.is_naive(expires_at):  # SQLite: UTC, naive
            expires_at = timezone.make_aware(expires_at, UTC)
        if ttl is not None and expires_at is not None:
            fresh = now + timedelta(seconds=ttl)
            if (fresh - expires_at).total_seconds() > slack(ttl):
                slide = [adapt(fresh), pk, adapt(now)]
                if self._execute_count(self.statements().slide, slide):
                    expires_at = fresh
        return text, expires_at

    def get(self, key: StateKey, ttl: float | None = None) -> str | None:
        found = self.fetch(key, ttl)
        return None if found is None else found[0]

    def statements(self) -> Statements:
        """The hot paths' SQL for this database (its vendor does not change)."""
        if self._statements is None:
            connection = connections[self.alias]
            table = connection.ops.quote_name(StateValue._meta.db_table)
            self._statements = statements(connection.vendor, table)
        return self._statements

    def _execute(self, sql: str, params: list[Any]) -> tuple[Any, ...] | None:
        """Run ``sql``; its first row (the rest, if any, is not read)."""
        cursor = hot_cursor(connections[self.alias])
        cursor.execute(sql, params)
        return cursor.fetchone() if cursor.description else None

    def _times(self, ttl: float | None) -> tuple[Any, Any]:
        """Now and the expiry a write with ``ttl`` gives, as the database takes them."""
        now = timezone.now()
        adapt = connections[self.alias].ops.adapt_datetimefield_value
        return adapt(now), adapt(_expiry(now, ttl))

    def writing(self, key: StateKey) -> AbstractContextManager[None]:
        """Around each write of ``key`` (cached_db invalidates its copy)."""
        return nullcontext()

    @reachable
    def write(
        self, key: StateKey, fn: Callable[[str | None], str | None], ttl: float | None
    ) -> tuple[str | None, str | None]:
        """Replace the text by ``fn(old)`` (``None`` deletes): compare-and-swap, or for a
        row that writers contend for, a row lock held around ``fn`` (where the database has
        ``SELECT ... FOR UPDATE``), so retries do not pile up as writers are added."""
        sql = self.statements()
        while True:
            locking = sql.read_locked is not None and self._contended.get(key, 0) > monotonic()
            with transaction.atomic(using=self.alias) if locking else nullcontext():
                done = self._attempt(sql, key, fn, ttl, locking)
            if done is not None:
                return done
            if len(self._contended) >= CONTENDED_KEYS:
                self._contended.clear()
            self._contended[key] = monotonic() + CONTENDED_SECONDS

    def _attempt(
        self,
        sql: Statements,
        key: StateKey,
        fn: Callable[[str | None], str | None],
        ttl: float | None,
        locking: bool,
    ) -> tuple[str | None, str | None] | None:
        """One write of ``key``; ``None`` if another writer got there first."""
        at, expiry = self._times(ttl)
        # locking: only where the database has a locked read
        found = self._execute((locking and sql.read_locked) or sql.read, [at, *key])
        if found is None:
            new = fn(None)
            if new is not None and not self._execute(sql.insert, [*key, new, at, expiry]):
                return None  # another writer inserted it first
            return None, new
        pk, text, version, dead = found
        old = None if dead else text
        new = fn(old)
        with transaction.atomic(using=self.alias) if dead and not locking else nullcontext():
            if new is None:
                done = self._execute_count(sql.remove, [pk, version])
            else:
                # Without a ttl, a live value keeps its expiry (a closed page's).
                keep = ttl is None and not dead
                done = self._execute_count(sql.swap, [new, at, keep, expiry, pk, version])
            if done and dead:  # keep the dead value for its on_expire callback
                self._execute(sql.insert, [*bury(key), text, at, at])
        return (old, new) if done else None

    def _execute_count(self, sql: str, params: list[Any]) -> int:
        cursor = hot_cursor(connections[self.alias])
        cursor.execute(sql, params)
        return int(cursor.rowcount)

    def after_write(self, callback: Callable[[], None]) -> None:
        if connections[self.alias].in_atomic_block:
            # After the commit, robust: a raising receiver is logged and cannot stop the
            # callbacks of later writes (cache invalidations, live updates).
            transaction.on_commit(callback, using=self.alias, robust=True)
        else:
            callback()

    def set(self, key: StateKey, text: str, ttl: float | None) -> str | None:
        with self.writing(key):
            return self._set(key, text, ttl)

    @reachable
    def _set(self, key: StateKey, text: str, ttl: float | None) -> str | None:
        sql = self.statements()
        if sql.set_live is not None:  # a live row: one statement
            at, expiry = self._times(ttl)
            found = self._execute(sql.set_live, [text, at, ttl is None, expiry, *key, at])
            if found is not None:
                return cast(str, found[0])
        return self.write(key, lambda old: text, ttl)[0]

    def update(self, key: StateKey, fn: Updater, ttl: float | None) -> tuple[str | None, str]:
        with self.writing(key):
            return cast(tuple[str | None, str], self.write(key, fn, ttl))

    def delete(self, key: StateKey) -> str | None:
        with self.writing(key):
            return self._delete(key)

    @reachable
    def _delete(self, key: StateKey) -> str | None:
        found = self._execute(self.statements().delete_live, [*key, self._times(None)[0]])
        if found is not None:  # a live row: one statement
            return cast(str, found[0])
        return self.write(key, lambda old: None, None)[0]

    def incr(
        self, key: StateKey, amount: int | float | Decimal, default: str, ttl: float | None
    ) -> tuple[str | None, str]:
        with self.writing(key):
            if type(amount) is int and abs(amount) < MAX_AMOUNT and INTEGER.fullmatch(default):
                done = self._incr(key, amount, str(int(default) + amount), ttl)
                if done is not None:
                    return done
            return cast(tuple[str | None, str], self.write(key, adding(key, amount, default), ttl))

    @reachable
    def _incr(
        self, key: StateKey, amount: int, first: str, ttl: float | None
    ) -> tuple[str | None, str] | None:
        """One statement: insert ``first`` or add ``amount`` to a live integer; ``None``
        (nothing written) if the row is dead or holds anything else."""
        at, expiry = self._times(ttl)
        found = self._execute(self.statements().incr, [*key, first, at, expiry, amount])
        if found is None:
            return None
        new, version = found
        return (None if version == 1 else str(int(new) - amount)), new

    @reachable
    def expire(self, key: StateKey, ttl: float) -> None:
        due = _expiry(timezone.now(), ttl)
        later = Q(expires_at__isnull=True) | Q(expires_at__gt=due)
        self._rows(key).filter(later).update(expires_at=due)

    @reachable
    def move_owner(self, old: str, new: str) -> None:
        rows = StateValue.objects.using(self.alias)
        with transaction.atomic(using=self.alias):
            rows.filter(scope=Scope.SESSION, owner=old).update(owner=new)
            rows.filter(scope=Scope.PAGE, owner__startswith=pages_of(old)).update(
                owner=Concat(Value(new), Substr("owner", len(old) + 1))
            )
