"""The database backends' inspection queries (the admin and ``manage.py statekit``): which
rows a selection of scope, name, owner and status is, read in bounded batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from statekit.backends.base import Entry
from statekit.backends.db_reach import reachable
from statekit.keys import (
    BROWSER,
    EXPIRED,
    StateKey,
    buried_prefix,
    buried_regex,
    pages_of,
)
from statekit.models import StateValue

#: statekit's own rows (browser state bundles, statekit.browser.refs): never listed.
INTERNAL = Q(scope=BROWSER) | Q(scope=EXPIRED, name__startswith=buried_prefix(BROWSER))

SCAN_ROWS = 200  # rows per query of scan(): values may be up to MAX_VALUE_BYTES each


def _live(now: datetime) -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


def _dead(key: StateKey, expires_at: datetime | None, now: datetime) -> bool:
    return key.scope == EXPIRED or (expires_at is not None and expires_at <= now)


class ListingQueries:
    """The inspection part of :class:`~statekit.backends.db.DatabaseBackend`."""

    alias: str  # the database

    def _rows(self, key: StateKey) -> QuerySet[StateValue]:
        return StateValue.objects.using(self.alias).filter(
            scope=key.scope, owner=key.owner, name=key.name
        )

    def selection(
        self,
        scope: str | None = None,
        name: str | None = None,
        owner: str | None = None,
        expired: bool | None = False,
        now: datetime | None = None,
    ) -> Q:
        """The rows :meth:`scan` selects, as a filter (the admin's list filters use it)."""
        now = now or timezone.now()
        found = ~INTERNAL
        if scope:
            found &= Q(scope=scope) | Q(scope=EXPIRED, name__startswith=buried_prefix(scope))
        if name:
            buried = Q(scope=EXPIRED, name__regex=buried_regex(name))
            found &= (Q(name=name) & ~Q(scope=EXPIRED)) | buried
        if owner:
            found &= Q(owner=owner) | Q(owner__startswith=pages_of(owner))
        if expired is False:
            found &= _live(now) & ~Q(scope=EXPIRED)
        elif expired:
            found &= Q(expires_at__lte=now) | Q(scope=EXPIRED)
        return found

    @reachable
    def scan(
        self,
        scope: str | None = None,
        name: str | None = None,
        owner: str | None = None,
        *,
        expired: bool | None = False,
    ) -> Iterator[Entry]:
        now = timezone.now()
        rows = StateValue.objects.using(self.alias).filter(
            self.selection(scope, name, owner, expired, now)
        )
        fields = ("pk", "scope", "owner", "name", "value", "expires_at", "updated_at")
        last = 0
        while True:  # keyset pagination: each query is short, whatever the table's size
            batch = list(rows.filter(pk__gt=last).order_by("pk").values_list(*fields)[:SCAN_ROWS])
            for _, row_scope, row_owner, row_name, text, expires_at, updated_at in batch:
                key = StateKey(row_scope, row_owner, row_name)
                yield Entry(key, text, expires_at, _dead(key, expires_at, now), updated_at)
            if len(batch) < SCAN_ROWS:
                return
            last = batch[-1][0]

    @reachable
    def entry(self, key: StateKey) -> Entry | None:
        found = self._rows(key).values_list("value", "expires_at", "updated_at")[:1]
        if not found:
            return None
        text, expires_at, updated_at = found[0]
        return Entry(key, text, expires_at, _dead(key, expires_at, timezone.now()), updated_at)

    @reachable
    def discard(self, key: StateKey) -> bool:
        return self._rows(key).delete()[0] > 0
