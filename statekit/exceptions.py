"""Errors raised by statekit. All derive from :class:`StateError`."""

from __future__ import annotations

from django.core.exceptions import BadRequest, SuspiciousOperation


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


class PageIdMissing(StateError, BadRequest):
    """The request carries no page id (answered with 400 Bad Request)."""


class InvalidPageId(StateError):
    """The page id is not valid in this session: one of the two below (answered with 400)."""


class ForgedPageId(InvalidPageId, SuspiciousOperation):
    """The page id was not issued by this site: forged, altered or not a page id (400,
    logged on Django's security logger)."""


class StalePageId(InvalidPageId, BadRequest):
    """The page id was issued by this site to another session, typically one that has since
    ended (logout, expiry): a page left open across a logout, not an attack (400, no
    security log)."""
