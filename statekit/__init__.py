"""statekit: global, session, page and browser state for Django."""

from statekit.exceptions import BackendUnavailable, StateError, StateTypeError, ValueTooLarge
from statekit.state import GlobalState, SessionState

__all__ = [
    "BackendUnavailable",
    "GlobalState",
    "SessionState",
    "StateError",
    "StateTypeError",
    "ValueTooLarge",
]
