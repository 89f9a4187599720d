"""statekit settings: one ``STATEKIT`` dict in settings.py, merged over ``DEFAULTS``.

Read lazily through :func:`get_settings`, whose cache is cleared on ``setting_changed``
so ``override_settings`` works.
"""

from __future__ import annotations

from difflib import get_close_matches
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # "db", "cache", "cached_db" or the dotted path of a BaseBackend subclass.
    "BACKEND": "db",
    # Database alias the "db" and "cached_db" backends store their rows in.
    "DATABASE": "default",
    # Cache alias (django-redis, or Django's RedisCache) for "cache" and "cached_db".
    "CACHE_ALIAS": "default",
    # A Redis Cluster for "cache" and "cached_db" instead of CACHE_ALIAS: its startup nodes,
    # e.g. ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"] (redis-py's RedisCluster).
    "REDIS_CLUSTER": None,
    # Every key statekit writes to the cache starts with this (after the cache's own prefix).
    "KEY_PREFIX": "statekit",
    # Largest encoded value, in bytes (UTF-8 JSON).
    "MAX_VALUE_BYTES": 1024 * 1024,
    # How long "cached_db" keeps a value in the cache, in seconds.
    "CACHE_TIMEOUT": 300,
    # How long a closed page's state is kept (a back/forward navigation may return), seconds.
    "PAGE_CLOSED_TTL": 3600,
    # Session resources: how often the background sweep closes idle and ended ones, seconds.
    "RESOURCE_SWEEP_SECONDS": 30,
    # BrowserState: every localStorage key statekit.js writes starts with this.
    "BROWSER_PREFIX": "statekit:",
    # BrowserState: default largest value, in bytes of UTF-8 JSON (``max_bytes=`` overrides).
    "BROWSER_MAX_BYTES": 4096,
    # Change streams of backends with no pub/sub of their own (db on SQLite): the alias in
    # CHANNEL_LAYERS of a network layer (channels-redis) that carries them between processes.
    "CHANNEL_LAYER": "default",
    # Live state: the path of the websocket consumer (statekit.routing), from the site root.
    "WS_PATH": "/ws/statekit/",
    # Live state: largest frame a client may send, in bytes; and watches per connection.
    "WS_MAX_MESSAGE_BYTES": 4096,
    "WS_MAX_WATCHES": 100,
}

BACKEND_ALIASES = {
    "db": "statekit.backends.db.DatabaseBackend",
    "cache": "statekit.backends.cache.CacheBackend",
    "cached_db": "statekit.backends.cached_db.CachedDatabaseBackend",
}


class SettingsError(ImproperlyConfigured):
    """``STATEKIT`` is not a dict of known settings; ``hint`` says what to change."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _unknown(user: dict[Any, Any]) -> SettingsError | None:
    unknown = sorted((key for key in user if key not in DEFAULTS), key=repr)
    if not unknown:
        return None
    hints = []
    for key in unknown:
        close = get_close_matches(key, DEFAULTS, n=1) if isinstance(key, str) else []
        fix = f"did you mean {close[0]!r}?" if close else "remove it"
        hints.append(f"STATEKIT[{key!r}]: {fix}")
    return SettingsError(
        f"Unknown STATEKIT setting(s): {', '.join(map(repr, unknown))}. "
        f"Known settings: {', '.join(DEFAULTS)}.",
        "; ".join(hints),
    )


@cache
def get_settings() -> dict[str, Any]:
    """The settings; raise :class:`SettingsError` (``statekit.E001``) if they are not a dict
    of known settings."""
    user = getattr(settings, "STATEKIT", {})
    if not isinstance(user, dict):
        raise SettingsError(
            f"STATEKIT is a {type(user).__name__}, not a dict.",
            'Set STATEKIT to a dict of settings, e.g. {"BACKEND": "db"}.',
        )
    error = _unknown(user)
    if error is not None:
        raise error
    return {**DEFAULTS, **user}


#: The Django settings whose change (override_settings) rebuilds the settings and backend.
RESET_BY = frozenset({"STATEKIT", "CACHES", "DATABASES", "SECRET_KEY", "CHANNEL_LAYERS"})


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in RESET_BY:
        get_settings.cache_clear()
