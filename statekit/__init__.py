"""statekit: global, session, page and browser state for Django."""

from statekit.browser.state import BrowserState
from statekit.exceptions import BackendUnavailable, StateError, StateTypeError, ValueTooLarge
from statekit.lifecycle.page_resources import page_resource
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
    "page_resource",
    "session_resource",
]
