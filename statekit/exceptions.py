"""Errors raised by statekit. All derive from :class:`StateError`."""

from __future__ import annotations


class StateError(Exception):
    """Base class of every statekit error."""


class StateTypeError(StateError, TypeError):
    """A value (or an owner) of a type statekit cannot store or use.

    ``path`` names the offending place, for example ``cart[2].price``.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ValueTooLarge(StateError, ValueError):
    """The encoded value is larger than ``STATEKIT["MAX_VALUE_BYTES"]``."""


class BackendUnavailable(StateError):
    """The storage behind the backend (Redis, the database) cannot be reached."""
