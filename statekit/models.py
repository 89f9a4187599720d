"""Rows of the "db" and "cached_db" backends: one per (scope, owner, name)."""

from __future__ import annotations

from django.db import models

from statekit.keys import Scope


class StateValue(models.Model):
    scope = models.CharField(max_length=16, choices=Scope.choices)
    # "" for global state, the session key, "<session key>.<page token>" (statekit.keys).
    owner = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255)
    value = models.TextField(help_text="The value, as statekit's JSON encoding.")
    # Bumped by every write: writers compare-and-swap on it (optimistic concurrency).
    version = models.PositiveBigIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Not stored: set on the values the admin shows (statekit.admin), when it has them.
    bytes: int  # the size of the value (an annotation of its queryset, or computed)
    user: str  # the user of the owner's session, "" if none
    expired: bool  # of a scanned value (no row): expired by the backend's clock

    class Meta:
        verbose_name = "state value"
        constraints = (
            models.UniqueConstraint(
                fields=["scope", "owner", "name"], name="statekit_unique_scope_owner_name"
            ),
        )

    def __str__(self) -> str:
        return f"{self.scope}:{self.name}" + (f" ({self.owner})" if self.owner else "")


class CacheEpoch(models.Model):
    """The generation of ``cached_db``'s Redis keys: one row, bumped by every write whose
    cache invalidation did not certainly happen, and when Redis restarts, which makes every
    older copy unreachable (see ``statekit.backends.epoch``)."""

    value = models.PositiveBigIntegerField(default=0)
    # The run id of the Redis server the epoch was last checked against.
    redis_run_id = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"cache epoch {self.value}"
