"""The database backends' cleanup queries: expired rows (counted, deleted with their values
for ``on_expire``, or dropped) and the rows of ended sessions, in bounded batches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence, Set
from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from statekit.backends.base import Alive
from statekit.backends.db_reach import reachable
from statekit.backends.sql import drop_statement, expired_rows
from statekit.keys import EXPIRED, StateKey, session_of
from statekit.models import StateValue

OWNER_BATCH = 500


class CleanupQueries:
    """The cleanup part of :class:`~statekit.backends.db.DatabaseBackend`."""

    alias: str  # the database

    @reachable
    def count_expired(self) -> int:
        return StateValue.objects.using(self.alias).filter(expires_at__lte=timezone.now()).count()

    @reachable
    def pop_expired(self, limit: int) -> list[tuple[StateKey, str]]:
        # DELETE ... RETURNING (PostgreSQL, SQLite >= 3.35) reports exactly the rows this
        # statement deleted.
        connection = connections[self.alias]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        table = connection.ops.quote_name(StateValue._meta.db_table)
        return self._delete_returning(expired_rows(connection.vendor, table), [now, limit, now])

    @reachable
    def drop_expired(self, limit: int, keep: Set[tuple[str, str]]) -> Counter[tuple[str, str]]:
        # As pop_expired, but the values stay in the database.
        connection = connections[self.alias]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        table = connection.ops.quote_name(StateValue._meta.db_table)
        kept = [part for pair in sorted(keep) for part in pair]
        counts: Counter[tuple[str, str]] = Counter()
        with transaction.atomic(using=self.alias), connection.cursor() as cursor:
            cursor.execute(
                drop_statement(connection.vendor, table, len(keep)),
                [now, EXPIRED, *kept, limit, now],
            )
            for scope, name, *count in cursor:
                counts[scope, name] += count[0] if count else 1
        return counts

    @reachable
    def orphans(
        self, scope: str, alive: Alive, dry_run: bool = False
    ) -> Iterator[Sequence[tuple[StateKey, str | None]]]:
        rows = StateValue.objects.using(self.alias).filter(scope=scope).order_by("owner")
        last = None
        while True:
            page = rows if last is None else rows.filter(owner__gt=last)
            owners = list(page.values_list("owner", flat=True).distinct()[:OWNER_BATCH])
            living = alive({session_of(owner) for owner in owners})
            doomed = [owner for owner in owners if session_of(owner) not in living]
            if doomed and dry_run:
                found = rows.filter(owner__in=doomed).values_list("owner", "name")
                yield [(StateKey(scope, owner, name), None) for owner, name in found]
            elif doomed:
                marks = ", ".join(["%s"] * len(doomed))
                yield self._delete_returning(f"scope = %s AND owner IN ({marks})", [scope, *doomed])
            if len(owners) < OWNER_BATCH:
                return
            last = owners[-1]

    def _delete_returning(self, where: str, params: list[Any]) -> list[tuple[StateKey, str]]:
        connection = connections[self.alias]
        table = connection.ops.quote_name(StateValue._meta.db_table)
        sql = f"DELETE FROM {table} WHERE {where} RETURNING scope, owner, name, value"
        with transaction.atomic(using=self.alias), connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [(StateKey(scope, owner, name), text) for scope, owner, name, text in cursor]
