"""Rows of the "db" and "cached_db" backends: one per (scope, owner, name)."""

from __future__ import annotations

from django.db import models


class Scope(models.TextChoices):
    GLOBAL = "global", "global"
    SESSION = "session", "session"
    PAGE = "page", "page"
    # A value that expired and was overwritten before the cleanup ran: kept, due at once,
    # so the cleanup can still run its on_expire callback. Named "<scope>:<name>:<token>".
    EXPIRED = "expired", "expired (awaiting cleanup)"


class StateValue(models.Model):
    scope = models.CharField(max_length=16, choices=Scope)
    # The session key for session state, the page id for page state, "" for global state.
    owner = models.CharField(max_length=255, blank=True, default="")
    name = models.CharField(max_length=255)
    value = models.TextField(help_text="The value, as statekit's JSON encoding.")
    # Bumped by every write: writers compare-and-swap on it (optimistic concurrency).
    version = models.PositiveBigIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

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
