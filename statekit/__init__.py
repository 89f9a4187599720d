"""statekit: global, session, page and browser state for Django."""

from statekit.browser.state import BrowserState
from statekit.exceptions import BackendUnavailable, StateError, StateTypeError, ValueTooLarge
from statekit.lifecycle.resources import session_resource
from statekit.state import GlobalState, PageState, SessionState

__all__ = [
    "BackendUnavailable",
    "BrowserState",
    "GlobalState",
    "PageState",
    "SessionState",
    "StateError",
    "StateTypeError",
    "ValueTooLarge",
    "session_resource",
]
