"""The state of the server: one engine for global, session and page state, and how a request
becomes an owner (a session key, a page)."""

from __future__ import annotations

from statekit.state.scopes import GlobalState, OwnedState, PageState, SessionState
from statekit.state.variable import Variable

__all__ = ["GlobalState", "OwnedState", "PageState", "SessionState", "Variable"]
