"""Session lifecycle: state follows a session through login, and ends with it.

- ``cycle_key()`` (called by ``login()``) gives the session a new key: its session and page
  state move to the new key before the old key is deleted, and its page ids stay valid.
- ``flush()`` (called by ``logout()``), expiry and ``clearsessions`` end the session: its
  state is unreachable at once (no later session has its key) and is deleted, with its
  ``on_expire`` callbacks, by the next ``statekit_cleanup``. Its resources close in the
  background at once (they receive ``session_ended``, as they receive ``session_moved``).
- Either way, the change streams of the old key's session and page state end, in every
  process (:func:`statekit.streams.changes.session_over`): live pages follow again with the
  session they have now.

The hooks are installed per request by ``statekit.middleware.StatekitMiddleware``.
"""

from __future__ import annotations

from importlib import import_module
from typing import cast

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.http import HttpRequest
from django.utils import timezone

from statekit.backends import get_backend
from statekit.signals import session_ended, session_moved
from statekit.state.pages import BINDING
from statekit.streams.changes import asession_over, session_over


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


class _Hooked(SessionBase):
    """Mixed into a session's class by :func:`watch`: ``cycle_key()`` moves the state to the
    new key, ``flush()`` ends it. The class is made once per session class, so a request
    pays one ``__class__`` assignment, not a closure per hook."""

    # cycle_key() creates the new key, then deletes the old one. The state moves in between,
    # before the old key is gone: a cleanup running meanwhile never sees it as ended.
    _statekit_cycling: str | None = None  # the old key, while cycle_key() runs

    def _start_cycle(self) -> None:
        self._statekit_cycling = self.session_key
        if self._statekit_cycling:
            self.setdefault(BINDING, self._statekit_cycling)  # page ids stay bound to it

    def _moving(self, session_key: str | None) -> str | None:
        cycling = self._statekit_cycling
        return cycling if cycling and session_key == cycling else None

    def cycle_key(self) -> None:
        self._start_cycle()
        try:
            super().cycle_key()
        finally:
            self._statekit_cycling = None

    async def acycle_key(self) -> None:
        self._start_cycle()
        try:
            await super().acycle_key()
        finally:
            self._statekit_cycling = None

    def delete(self, session_key: str | None = None) -> None:
        old = self._moving(session_key)
        if old:
            new = cast(str, self.session_key)  # cycle_key() created the new session first
            get_backend().move_owner(old, new)
            session_moved.send(sender=None, old=old, new=new)
            session_over(old)
        super().delete(session_key)

    async def adelete(self, session_key: str | None = None) -> None:
        old = self._moving(session_key)
        if old:
            new = cast(str, self.session_key)  # acycle_key() created the new session first
            await get_backend().amove_owner(old, new)
            session_moved.send(sender=None, old=old, new=new)
            await asession_over(old)
        await super().adelete(session_key)

    def flush(self) -> None:
        old = self.session_key
        super().flush()
        if old:
            session_ended.send(sender=None, session_key=old)
            session_over(old)

    async def aflush(self) -> None:
        old = self.session_key
        await super().aflush()
        if old:
            session_ended.send(sender=None, session_key=old)
            await asession_over(old)


_hooked: dict[type, type] = {}


def watch(request: HttpRequest) -> None:
    """Hook this request's session so cycle_key moves its state and flush ends it."""
    session = getattr(request, "session", None)
    if not isinstance(session, SessionBase) or isinstance(session, _Hooked):
        return
    cls = type(session)
    hooked = _hooked.get(cls)
    if hooked is None:
        made = type(cls.__name__, (_Hooked, cls), {"__module__": cls.__module__})
        hooked = _hooked.setdefault(cls, made)
    session.__class__ = hooked
