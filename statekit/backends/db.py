"""The "db" backend: one ``StateValue`` row per value, in ``STATEKIT["DATABASE"]``.

Writes are optimistic: read the row and its version, then update only if the version is
unchanged (or insert, relying on the unique constraint), and retry otherwise. That is atomic
on every database Django supports without holding locks across the caller's code.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import cast

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from statekit.backends.base import BaseBackend, StateKey, Updater
from statekit.conf import get_settings
from statekit.models import StateValue


def _live(now: datetime) -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


def _expiry(now: datetime, ttl: float | None) -> datetime | None:
    return None if ttl is None else now + timedelta(seconds=ttl)


class DatabaseBackend(BaseBackend):
    uses_database = True

    def __init__(self) -> None:
        self.alias: str = get_settings()["DATABASE"]

    def _rows(self, key: StateKey) -> QuerySet[StateValue]:
        return StateValue.objects.using(self.alias).filter(
            scope=key.scope, owner=key.owner, name=key.name
        )

    def fetch(self, key: StateKey) -> tuple[str, datetime | None] | None:
        """The live ``(text, expires_at)`` of ``key``, or ``None``."""
        rows = self._rows(key).filter(_live(timezone.now()))
        found = rows.values_list("value", "expires_at")[:1]
        return found[0] if found else None

    def get(self, key: StateKey) -> str | None:
        found = self.fetch(key)
        return None if found is None else found[0]

    def write(
        self, key: StateKey, fn: Callable[[str | None], str | None], ttl: float | None
    ) -> tuple[str | None, str | None]:
        """Replace the text by ``fn(old)`` (``None`` deletes) with compare-and-swap."""
        rows = self._rows(key)
        while True:
            found = rows.values_list("pk", "value", "version", "expires_at")[:1]
            now = timezone.now()
            if not found:
                new = fn(None)
                if new is None:
                    return None, None
                try:
                    with transaction.atomic(using=self.alias):
                        rows.create(
                            scope=key.scope,
                            owner=key.owner,
                            name=key.name,
                            value=new,
                            expires_at=_expiry(now, ttl),
                        )
                except IntegrityError:  # another writer inserted it first
                    continue
                return None, new
            pk, text, version, expires_at = found[0]
            old = text if expires_at is None or expires_at > now else None
            new = fn(old)
            same = StateValue.objects.using(self.alias).filter(pk=pk, version=version)
            if new is None:
                done = same.delete()[0]
            else:
                done = same.update(
                    value=new,
                    version=F("version") + 1,
                    updated_at=now,
                    expires_at=_expiry(now, ttl),
                )
            if done:
                return old, new

    def after_write(self, callback: Callable[[], None]) -> None:
        transaction.on_commit(callback, using=self.alias)

    def set(self, key: StateKey, text: str, ttl: float | None) -> str | None:
        return self.write(key, lambda old: text, ttl)[0]

    def update(self, key: StateKey, fn: Updater, ttl: float | None) -> tuple[str | None, str]:
        return cast(tuple[str | None, str], self.write(key, fn, ttl))

    def delete(self, key: StateKey) -> str | None:
        return self.write(key, lambda old: None, None)[0]

    def clear_expired(self) -> int:
        expired = StateValue.objects.using(self.alias).filter(expires_at__lte=timezone.now())
        return expired.delete()[0]
