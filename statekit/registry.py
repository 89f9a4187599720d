"""The declared variables, by scope and name: one registry for every kind of state (the bottom
layer: it imports nothing else from statekit). A name means one thing per scope."""

from __future__ import annotations

import threading
from typing import Any, ClassVar, Protocol, TypeVar

from django.conf import settings
from django.urls import get_resolver


class Declared(Protocol):
    """What the registry knows of a variable (a GlobalState, PageState, BrowserState...)."""

    scope: ClassVar[str]
    name: str


D = TypeVar("D", bound=Declared)

_declared: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def register(variable: D) -> D:
    """Record ``variable`` unless its scope and name are taken; return the first one."""
    with _lock:
        first: D = _declared.setdefault((variable.scope, variable.name), variable)
    return first


def lookup(scope: str, name: str) -> Any | None:
    """The variable declared as ``name`` in ``scope``, or None."""
    return _declared.get((scope, name))


def declared(scope: str | None = None) -> list[Any]:
    """The declared variables, optionally of one scope, sorted by scope and name."""
    with _lock:
        found = [v for (s, _), v in _declared.items() if scope in (None, s)]
    return sorted(found, key=lambda v: (v.scope, v.name))


def load_declarations() -> None:
    """Import the project's URLconf, as a server does when it starts serving, so that the
    variables declared outside an app's ``state.py`` (autodiscovered at start-up), in modules
    the views import, are known. A management command does not load it otherwise; the admin
    runs in a request, where it is loaded already."""
    if getattr(settings, "ROOT_URLCONF", None):
        get_resolver().url_patterns  # noqa: B018  (the property imports the URLconf)
