"""How a request becomes a session owner: the session key behind a request, a session or a
key given as is."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

from statekit.exceptions import StateTypeError
from statekit.keys import SESSION_KEY


def request_session(request: HttpRequest, var: Any) -> SessionBase:
    """``request.session``, or a clear error naming ``var`` (a variable, or words for one)."""
    session = getattr(request, "session", None)
    if session is None:
        raise ImproperlyConfigured(
            f"{var if isinstance(var, str) else repr(var)} needs request.session: add "
            "'django.contrib.sessions.middleware.SessionMiddleware' to MIDDLEWARE."
        )
    return session  # type: ignore[no-any-return]  # request.session, set by its middleware


def owner_session(owner: Any, var: Any) -> SessionBase | str:
    """The session (or session key) behind an owner, or a clear error. ``var`` (a variable,
    or words for one) names what needs it."""
    var = var if isinstance(var, str) else "session state" if var is None else repr(var)
    if isinstance(owner, str):
        if SESSION_KEY.fullmatch(owner):
            return owner
    elif isinstance(owner, SessionBase):
        return owner
    elif isinstance(owner, HttpRequest):
        return request_session(owner, var)
    raise StateTypeError(
        f"The owner of {var} must be an HttpRequest, a SessionBase or a session key (1 to "
        f"200 characters, no ':', '.' or space), not {owner!r}.",
    )


def session_key(owner: Any, var: Any = None) -> str:
    """The session key of an owner; a session without one yet is saved (and marked
    modified, so SessionMiddleware sends its cookie)."""
    session = owner_session(owner, var)
    if isinstance(session, SessionBase):
        if session.session_key is None:
            session.save()
            session.modified = True
        return cast(str, session.session_key)  # save() set it
    return session


async def asession_key(owner: Any, var: Any = None) -> str:
    session = owner_session(owner, var)
    if isinstance(session, SessionBase):
        if session.session_key is None:
            await session.asave()
            session.modified = True
        return cast(str, session.session_key)  # asave() set it
    return session
