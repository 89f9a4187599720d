"""statekit: global, session, page and browser state for Django."""

from statekit.browser import BrowserState
from statekit.exceptions import BackendUnavailable, StateError, StateTypeError, ValueTooLarge
from statekit.state import GlobalState, SessionState

__all__ = [
    "BackendUnavailable",
    "BrowserState",
    "GlobalState",
    "SessionState",
    "StateError",
    "StateTypeError",
    "ValueTooLarge",
]
