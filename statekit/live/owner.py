"""Who may watch what, for the websocket and the event stream alike: the variable a watch
names (:func:`watched`), whose value it reads (:func:`owner_for`: the connection's session, the
page ids issued to it), the refusal it gets (:class:`Refused`), and the value as the browser
gets it (:func:`as_json`)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async

from statekit.codec import browser_json
from statekit.exceptions import InvalidPageId, StateTypeError
from statekit.keys import Scope
from statekit.registry import declared
from statekit.state import pages

logger = logging.getLogger("statekit.live")

_UNSET: Any = object()


class Refused(Exception):
    """A frame the consumer answers with an error frame: ``code`` and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.watch: str | None = None  # the event stream's watch that was refused


def unreadable(variable: Any, exc: Exception) -> Refused:
    """Why a watch of ``variable`` ends when its value cannot be read (``exc``): ``schema``,
    for good (its stored value no longer fits its schema), or ``unavailable`` (the store is
    down: statekit.js watches again a few seconds later). Logged here, once."""
    what = f"{variable.scope} state {variable.name!r}"
    if isinstance(exc, StateTypeError):
        logger.warning("statekit: %s cannot be watched: %s", what, exc)
        return Refused("schema", f"{what} holds a value that does not fit its schema.")
    logger.warning("statekit: %s could not be read (%s)", what, " ".join(str(exc).split())[:200])
    return Refused("unavailable", f"{what} could not be read: watch again.")


def watched(scope: str, name: str) -> Any:
    """The declared variable a watch names; Refused when it is not declared or not watchable
    (the same message for both, so names cannot be probed)."""
    # Declared at start-up: StatekitConfig.ready imports every app's state.py.
    variable = next((v for v in declared(scope) if v.name == name), None)
    if variable is None or not variable.streamed:
        raise Refused(
            "refused",
            f"{scope} state {name!r} cannot be watched: it is not declared"
            + (", or not public." if scope == Scope.GLOBAL else "."),
        )
    return variable


def as_json(variable: Any, value: Any) -> str:
    """A value of ``variable`` as JSON for the browser (a schema's typed value in its stored
    form)."""
    return browser_json(variable.stored_form(value))


async def current_json(variable: Any, owner: str | None) -> str:
    """The current value of ``variable`` (of ``owner``), as JSON for the browser."""
    value = await (variable.aget() if variable.scope == Scope.GLOBAL else variable.aget(owner))
    return as_json(variable, value)


async def owner_for(scope: str, session: Any, session_key: str | None, page_id: Any) -> str | None:
    """Whose value a watch of ``scope`` reads: None (global), the session key, or the owner of
    the page ``page_id``, which must have been issued to ``session`` (key ``session_key``:
    None when there is no live session)."""
    if scope == Scope.GLOBAL:
        return None
    if session_key is None:
        raise Refused("refused", "This connection has no session: load a page of the site first.")
    if scope == Scope.SESSION:
        return session_key
    if not isinstance(page_id, str) or not page_id:
        raise Refused(
            "invalid",
            f"Page state needs the page id: in 'page', or ?{pages.FIELD}= in the URL.",
        )
    try:
        return await sync_to_async(pages.verify)(session, page_id)
    except InvalidPageId:
        raise Refused(
            "refused", "The page id was not issued to this connection's session."
        ) from None


class ConnectionOwner:
    """The owner part of :class:`~statekit.live.consumer.StateConsumer` (``self.scope`` is
    the ASGI scope of the connection)."""

    scope: dict[str, Any]
    _session_key: str | None = _UNSET

    async def owner(self, scope: str, content: dict[str, Any]) -> str | None:
        """Whose value a watch reads: None (global), the session key, or the page's owner."""
        if scope == Scope.GLOBAL:
            return None
        key = await self.session_key()
        page_id = content.get("page", self.query_page_id())
        return await owner_for(scope, self.scope.get("session"), key, page_id)

    def query_page_id(self) -> str | None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        found = query.get(pages.FIELD)
        return found[0] if found else None

    async def session_key(self) -> str | None:
        """The key of the connection's session, if that session exists and has not expired."""
        if self._session_key is _UNSET:
            session = self.scope.get("session")
            if session is None:
                logger.warning(
                    "statekit consumer has no scope['session']: wrap it in "
                    "SessionMiddlewareStack or AuthMiddlewareStack to allow session state."
                )
                self._session_key = None
            else:
                await session.aitems()  # loads it: an unknown or expired key becomes None
                self._session_key = session.session_key
        return self._session_key
