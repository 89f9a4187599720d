"""Storage backends, chosen by ``STATEKIT["BACKEND"]`` like Django's ``SESSION_ENGINE``."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from statekit.backends.base import BaseBackend
from statekit.conf import BACKEND_ALIASES, RESET_BY, get_settings
from statekit.extras import missing_extra
from statekit.keys import StateKey

__all__ = ["BaseBackend", "StateKey", "backend_class", "get_backend"]


def backend_class(path: str) -> type[BaseBackend]:
    """Import the backend named by an alias ("db", "cache", "cached_db") or a dotted path."""
    dotted = BACKEND_ALIASES.get(path, path)
    try:
        cls = import_string(dotted)
    except ImportError as exc:
        missing = missing_extra(exc, f'STATEKIT["BACKEND"] = {path!r}')
        if missing is not exc:
            raise missing from None
        raise ImproperlyConfigured(
            f'STATEKIT["BACKEND"] = {path!r} cannot be imported ({exc}). Use "db", "cache", '
            '"cached_db" or the dotted path of a statekit.backends.BaseBackend subclass.'
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseBackend)):
        raise ImproperlyConfigured(
            f'STATEKIT["BACKEND"] = {path!r} is not a subclass of statekit.backends.BaseBackend.'
        )
    return cls


@cache
def get_backend() -> BaseBackend:
    """The configured backend; rebuilt when STATEKIT, CACHES or DATABASES change."""
    return backend_class(get_settings()["BACKEND"])()


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in RESET_BY:
        get_backend.cache_clear()
