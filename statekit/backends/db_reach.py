"""The one translation of "the database cannot be reached" into
:class:`~statekit.exceptions.BackendUnavailable`, for the database backends' queries."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any, TypeVar, cast

from django.db import InterfaceError, OperationalError, connections

from statekit.exceptions import BackendUnavailable

DATABASE_DOWN = (OperationalError, InterfaceError)

Method = TypeVar("Method", bound=Callable[..., Any])


def reachable(method: Method) -> Method:
    """Turn the errors of a database that cannot be reached into :class:`BackendUnavailable`.

    Outside a transaction, a connection the error left unusable is closed too, so the next
    call connects afresh: service resumes as soon as the database answers, in a request or
    not (Django itself only closes broken connections at the end of a request).
    """

    def unavailable(self: Any, exc: Exception) -> BackendUnavailable:  # self.alias: a database
        connection = connections[self.alias]
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        return BackendUnavailable(f"statekit cannot reach the database {self.alias!r}: {exc}")

    if inspect.isgeneratorfunction(method):

        @wraps(method)
        def generate(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from method(self, *args, **kwargs)
            except DATABASE_DOWN as exc:
                raise unavailable(self, exc) from exc

        return cast(Method, generate)

    @wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except DATABASE_DOWN as exc:
            raise unavailable(self, exc) from exc

    return cast(Method, call)
