"""Session lifecycle: state follows a session through login, and ends with it.

- ``cycle_key()`` (called by ``login()``) gives the session a new key: its session and page
  state move to the new key before the old key is deleted, and its page ids stay valid.
- ``flush()`` (called by ``logout()``), expiry and ``clearsessions`` end the session: its
  state is unreachable at once (no later session has its key) and is deleted, with its
  ``on_expire`` callbacks, by the next ``statekit_cleanup``. Its resources close in the
  background at once (they receive ``session_ended``, as they receive ``session_moved``).

The hooks are installed per request by ``statekit.middleware.StatekitMiddleware``.
"""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.http import HttpRequest
from django.utils import timezone

from statekit.backends import get_backend
from statekit.signals import session_ended, session_moved
from statekit.state.pages import BINDING


def alive(keys: set[str]) -> set[str]:
    """Those of ``keys`` whose session exists and has not expired."""
    if not keys:
        return set()
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if issubclass(store, DatabaseStore):  # "db" and "cached_db": one query
        model = store.get_model_class()
        found = model.objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
        return set(found.values_list("session_key", flat=True))
    return {key for key in keys if store().exists(key)}


def watch(request: HttpRequest) -> None:
    """Hook this request's session so cycle_key moves its state and flush ends it."""
    session = getattr(request, "session", None)
    if session is None or "cycle_key" in session.__dict__:
        return
    cycle_key, acycle_key = session.cycle_key, session.acycle_key
    flush, aflush = session.flush, session.aflush
    delete, adelete = session.delete, session.adelete

    # cycle_key() creates the new key, then deletes the old one. The state moves in between,
    # before the old key is gone: a cleanup running meanwhile never sees it as ended.
    cycling: str | None = None  # the old key, while cycle_key() runs

    def start_cycle() -> None:
        nonlocal cycling
        cycling = session.session_key
        if cycling:
            session.setdefault(BINDING, cycling)  # page ids stay bound to the first key

    def hooked_delete(session_key: str | None = None) -> None:
        if cycling and session_key == cycling:
            get_backend().move_owner(cycling, session.session_key)
            session_moved.send(sender=None, old=cycling, new=session.session_key)
        delete(session_key)

    async def hooked_adelete(session_key: str | None = None) -> None:
        if cycling and session_key == cycling:
            await get_backend().amove_owner(cycling, session.session_key)
            session_moved.send(sender=None, old=cycling, new=session.session_key)
        await adelete(session_key)

    def hooked_cycle_key() -> None:
        nonlocal cycling
        start_cycle()
        try:
            cycle_key()
        finally:
            cycling = None

    async def hooked_acycle_key() -> None:
        nonlocal cycling
        start_cycle()
        try:
            await acycle_key()
        finally:
            cycling = None

    def hooked_flush() -> None:
        old = session.session_key
        flush()
        if old:
            session_ended.send(sender=None, session_key=old)

    async def hooked_aflush() -> None:
        old = session.session_key
        await aflush()
        if old:
            session_ended.send(sender=None, session_key=old)

    session.cycle_key, session.acycle_key = hooked_cycle_key, hooked_acycle_key
    session.delete, session.adelete = hooked_delete, hooked_adelete
    session.flush, session.aflush = hooked_flush, hooked_aflush
