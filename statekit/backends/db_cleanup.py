"""The database backends' cleanup queries: expired rows (deleted unread and counted per
variable, or deleted with their values for ``on_expire``) and the rows of ended sessions, in
bounded batches.

Each pass goes over the table once, range by range: ranges of PostgreSQL's pages (read by a
TID range scan) or of SQLite's ids. A batch reads its range only, however many rows earlier
batches deleted: picking "the next expired rows" with ``LIMIT`` instead scans PostgreSQL's
dead rows again at every batch, until the last one scans them all for nothing. Rows written
after a pass begins lie past its end or are live; the next cleanup takes those that expire
or whose session ends by then.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence, Set
from typing import Any, NamedTuple

from django.db import connections, transaction
from django.utils import timezone

from statekit.backends.base import Alive, Expired
from statekit.backends.db_reach import reachable
from statekit.keys import EXPIRED, EXPIRING, StateKey, session_of
from statekit.models import StateValue

OWNER_BATCH = 500  # owners whose sessions are looked up at once
OWNER_ROWS = 10_000  # rows whose owners are gathered at once, about
#: Values without an on_expire are deleted unread, ``DROP_BATCHES`` batches' rows at a time.
DROP_BATCHES = 100
#: Rows a PostgreSQL page holds at most, about (the smallest rows take some 64 bytes): the
#: ranges' size when the table has no statistics yet.
ROWS_PER_PAGE = 128


class Query(NamedTuple):
    where: str  # a condition on the rows
    params: list[Any]


class Changed(Exception):
    """The rows of a range changed between counting and deleting them."""


class CleanupQueries:
    """The cleanup part of :class:`~statekit.backends.db.DatabaseBackend`."""

    alias: str  # the database

    def _table(self) -> str:
        """The quoted name of the table of values, for raw SQL."""
        return connections[self.alias].ops.quote_name(StateValue._meta.db_table)

    @reachable
    def count_expired(self) -> int:
        return StateValue.objects.using(self.alias).filter(expires_at__lte=timezone.now()).count()

    @reachable
    def clear_expired(self, batch_size: int, keep: Set[tuple[str, str]]) -> Iterator[Expired]:
        for low, high in self._ranges(batch_size * DROP_BATCHES):
            dropped, pending = self._drop(low, high, keep)
            if dropped:
                yield Expired(dropped, [])
            if pending:  # values to return: in ranges of about batch_size rows
                for part, end in self._ranges(batch_size, low, high):
                    while popped := self._pop(part, end, batch_size):
                        yield Expired(Counter(), popped)

    def _ranges(
        self, rows: int, start: int | None = None, stop: int | None = None
    ) -> Iterator[tuple[int, int]]:
        """``[low, high)`` ranges of about ``rows`` rows, in order, over the table or over
        ``[start, stop)``: of pages on PostgreSQL, of ids on SQLite (taken from the rows
        there are, so that ids deleted long ago make no empty ranges)."""
        connection = connections[self.alias]
        table = self._table()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_relation_size(oid) / current_setting('block_size')::int,"
                    " relpages, reltuples FROM pg_class WHERE oid = %s::regclass",
                    [table],
                )
                pages, counted_pages, tuples = cursor.fetchone()
            known = counted_pages > 0 and tuples > 0  # reltuples is -1 before any ANALYZE
            per_page = tuples / counted_pages if known else ROWS_PER_PAGE
            span = max(1, int(rows / per_page))
            start, stop = start or 0, pages if stop is None else stop
            for low in range(start, stop, span):
                yield low, min(low + span, stop)
            return
        if start is None or stop is None:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT min(id), max(id) FROM {table}")
                first, last = cursor.fetchone()
            if first is None:
                return
            start, stop = first, last + 1
        low = start
        while low < stop:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id FROM {table} WHERE id >= %s AND id < %s ORDER BY id"
                    " LIMIT 1 OFFSET %s",
                    [low, stop, rows],
                )
                found = cursor.fetchone()
            high = stop if found is None else found[0]
            yield low, high
            low = high

    def _range(self, low: int, high: int) -> Query:
        """The rows of range [low, high)."""
        if connections[self.alias].vendor == "postgresql":
            return Query("ctid >= %s::tid AND ctid < %s::tid", [f"({low},0)", f"({high},0)"])
        return Query("id >= %s AND id < %s", [low, high])

    def _within(self, low: int, high: int) -> Query:
        """The expired rows of range [low, high)."""
        now = connections[self.alias].ops.adapt_datetimefield_value(timezone.now())
        rows = self._range(low, high)
        return Query(f"{rows.where} AND expires_at <= %s", [*rows.params, now])

    def _drop(
        self, low: int, high: int, keep: Set[tuple[str, str]]
    ) -> tuple[Counter[tuple[str, str]], bool]:
        """Delete the range's expired rows but buried ones and those of ``keep``: how many
        of each variable, and whether the range has expired rows left to pop."""
        connection = connections[self.alias]
        table = self._table()
        expired = self._within(low, high)
        kept = sorted(keep)
        spared = f"AND (scope, name) NOT IN ({', '.join(['(%s, %s)'] * len(kept))})"
        doomed = Query(
            f"{expired.where} AND scope <> %s {spared if kept else ''}",
            [*expired.params, EXPIRED, *(part for pair in kept for part in pair)],
        )
        with transaction.atomic(using=self.alias), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                return self._count_and_drop(cursor, table, expired, doomed, keep)
            # SQLite, one writer at a time: what the DELETE returns is what it deleted.
            sql = f"DELETE FROM {table} WHERE {doomed.where} RETURNING scope, name"
            cursor.execute(sql, doomed.params)
            dropped = Counter((scope, name) for scope, name in cursor)
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {expired.where})", expired.params
            )
            return dropped, bool(cursor.fetchone()[0])

    def _count_and_drop(
        self, cursor: Any, table: str, expired: Query, doomed: Query, keep: Set[tuple[str, str]]
    ) -> tuple[Counter[tuple[str, str]], bool]:
        """PostgreSQL: a count and a plain DELETE, as RETURNING every row's variable costs
        more than deleting it. The DELETE's row count checks the count: a write or another
        cleanup that changed the range in between sends it to a DELETE that counts what it
        deletes (the two statements see the table at different times)."""
        cursor.execute(
            f"SELECT scope, name, count(*) FROM {table} WHERE {expired.where} GROUP BY 1, 2",
            expired.params,
        )
        found = Counter({(scope, name): count for scope, name, count in cursor})
        dropped = Counter({k: n for k, n in found.items() if k[0] != EXPIRED and k not in keep})
        if not dropped:
            return dropped, bool(found)
        try:
            with transaction.atomic(using=self.alias):
                cursor.execute(f"DELETE FROM {table} WHERE {doomed.where}", doomed.params)
                if cursor.rowcount != dropped.total():
                    raise Changed
        except Changed:
            cursor.execute(
                f"WITH gone AS (DELETE FROM {table} WHERE {doomed.where} RETURNING scope, name)"
                " SELECT scope, name, count(*) FROM gone GROUP BY 1, 2",
                doomed.params,
            )
            return Counter({(scope, name): count for scope, name, count in cursor}), True
        return dropped, dropped.total() < found.total()

    def _pop(self, low: int, high: int, limit: int) -> list[tuple[StateKey, str]]:
        """Delete up to ``limit`` expired rows of range [low, high); return them."""
        # DELETE ... RETURNING (PostgreSQL, SQLite >= 3.35) reports exactly the rows this
        # statement deleted: two cleanups at once never return one row twice. The outer
        # expiry test is rechecked on rows a concurrent write extended.
        connection = connections[self.alias]
        table = self._table()
        expired = self._within(low, high)
        if connection.vendor == "postgresql":
            chosen = f"ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {expired.where} LIMIT %s))"
        else:
            chosen = f"id IN (SELECT id FROM {table} WHERE {expired.where} LIMIT %s)"
        now = expired.params[-1]
        return self._delete_returning(
            f"{chosen} AND expires_at <= %s", [*expired.params, limit, now]
        )

    @reachable
    def orphans(
        self, alive: Alive, dry_run: bool = False
    ) -> Iterator[Sequence[tuple[StateKey, str | None]]]:
        # Range by range, as the expired rows: the owners an index scan would give in order
        # cost a visit to every index entry of the rows the expiry pass just deleted.
        connection = connections[self.alias]
        table = self._table()
        for low, high in self._ranges(OWNER_ROWS):
            rows = self._range(low, high)
            with connection.cursor() as cursor:
                scopes = ", ".join(["%s"] * len(EXPIRING))
                where = f"{rows.where} AND scope IN ({scopes})"
                cursor.execute(
                    f"SELECT DISTINCT scope, owner FROM {table} WHERE {where}",
                    [*rows.params, *EXPIRING],
                )
                owned = cursor.fetchall()
            for first in range(0, len(owned), OWNER_BATCH):
                some = owned[first : first + OWNER_BATCH]
                living = alive({session_of(owner) for _, owner in some})
                for scope in EXPIRING:
                    doomed = [o for s, o in some if s == scope and session_of(o) not in living]
                    if doomed:
                        yield self._end(rows, scope, doomed, dry_run)

    def _end(
        self, rows: Query, scope: str, owners: list[str], dry_run: bool
    ) -> Sequence[tuple[StateKey, str | None]]:
        """Delete (with ``dry_run``, list) the values of ``owners`` in ``scope`` in ``rows``."""
        connection = connections[self.alias]
        table = self._table()
        marks = ", ".join(["%s"] * len(owners))
        where = f"{rows.where} AND scope = %s AND owner IN ({marks})"
        params = [*rows.params, scope, *owners]
        if not dry_run:
            return self._delete_returning(where, params)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT owner, name FROM {table} WHERE {where}", params)
            return [(StateKey(scope, owner, name), None) for owner, name in cursor]

    def _delete_returning(self, where: str, params: list[Any]) -> list[tuple[StateKey, str]]:
        connection = connections[self.alias]
        table = self._table()
        sql = f"DELETE FROM {table} WHERE {where} RETURNING scope, owner, name, value"
        with transaction.atomic(using=self.alias), connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [(StateKey(scope, owner, name), text) for scope, owner, name, text in cursor]
