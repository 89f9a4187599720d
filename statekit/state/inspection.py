"""What the admin and ``manage.py statekit`` share: one way to find, read and change stored
values from outside a request.

Writes of declared variables go through their API (``set`` / ``delete``), so values are
validated (JSON, ``MAX_VALUE_BYTES``), ``state_changed`` is sent and live clients see the
change. A value whose variable is no longer declared, and a dead value, can only be removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import import_module
from typing import Any, TypeAlias

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.core.exceptions import ValidationError
from django.db.models import Case, DateTimeField, F, Q, QuerySet, TextField, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from statekit.backends import get_backend
from statekit.backends.base import Entry
from statekit.codec import decode, encode
from statekit.exceptions import StateError, StateTypeError
from statekit.keys import EXPIRED, EXPIRING, StateKey, session_of
from statekit.models import StateValue
from statekit.registry import lookup
from statekit.state.scopes import GlobalState, OwnedState

#: The statuses a listing selects by (the admin's filter, ``manage.py statekit --status``):
#: the ``expired`` argument of ``backend.scan()``.
STATUSES = {"live": False, "expired": True}


class NotDeclared(StateError, LookupError):
    """No variable of that scope and name is declared (in the modules loaded so far)."""


#: A variable whose values the server stores (BrowserState's are in the browser).
Stored: TypeAlias = GlobalState[Any] | OwnedState[Any]


def variable_of(key: StateKey) -> Stored | None:
    """The declared variable a key belongs to; None for a buried or undeclared value."""
    return None if key.scope == EXPIRED else lookup(key.scope, key.name)


def declared_variable(key: StateKey) -> Stored:
    var = variable_of(key)
    if var is None:
        raise NotDeclared(
            f"No {key.scope} state {key.name!r} is declared, so its values can be read and "
            "deleted but not written. Declare it (in a module the project imports) first."
        )
    return var


def size(text: str) -> int:
    """The size of a stored value, in bytes (what ``MAX_VALUE_BYTES`` limits)."""
    return len(text.encode())


def pretty(text: str) -> str:
    """Stored JSON text, indented for people (the text itself if it is not JSON that
    statekit could store: too deep, or with a lone surrogate)."""
    try:
        shown = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        shown.encode()
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return text
    return shown


def parse(text: str, name: str) -> Any:
    """The value that JSON ``text`` (statekit's encoding) holds for variable ``name``, once
    it passed the checks a write makes: types and ``MAX_VALUE_BYTES``."""
    try:
        value = decode(text)
    except ValueError as exc:  # not JSON, or not statekit's encoding of a value
        raise StateTypeError(f"The value of {name!r} is not valid JSON: {exc}", name) from None
    encode(value, name)
    return value


def parse_for(key: StateKey, text: str) -> Any:
    """:func:`parse` for the variable declared for ``key``, checked against its schema as
    the write will be (StateTypeError naming the path; NotDeclared)."""
    value = parse(text, key.name)
    declared_variable(key).plain(value)
    return value


#: The expiries Python can read; a database may store others (PostgreSQL: 'infinity').
LAST, FIRST = datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)


def readable_expiry(rows: QuerySet[StateValue]) -> QuerySet[StateValue]:
    """``rows`` with ``expires_at`` left unread: ``expiry`` holds it, clamped to what Python
    can read, and ``expiry_stored`` the stored text when it could not be read (a value set
    by hand, such as PostgreSQL's 'infinity'). Read them with :func:`expiry_of`."""
    unreadable = Q(expires_at__gt=LAST) | Q(expires_at__lt=FIRST)
    return rows.defer("expires_at").annotate(
        expiry=Case(
            When(expires_at__gt=LAST, then=Value(LAST)),
            When(expires_at__lt=FIRST, then=Value(FIRST)),
            default=F("expires_at"),
            output_field=DateTimeField(),
        ),
        expiry_stored=Case(When(unreadable, then=Cast("expires_at", TextField()))),
    )


def expiry_of(obj: Any) -> tuple[datetime | None, str | None]:
    """(expiry, the stored text if Python could not read it) of a row of
    :func:`readable_expiry`, or of an object with a plain ``expires_at``."""
    if hasattr(obj, "expiry"):
        return obj.expiry, obj.expiry_stored
    return obj.expires_at, None


def entry(key: StateKey) -> Entry | None:
    """The stored value of ``key``, live or dead; its expiry is not extended."""
    return get_backend().entry(key)


def write(key: StateKey, value: Any) -> None:
    """Store ``value`` through the declared variable (validation, signals, live updates)."""
    var = declared_variable(key)
    if isinstance(var, GlobalState):
        var.set(value)
    else:
        var.set(key.owner, value)


def remove(key: StateKey) -> bool:
    """Delete a value: a live one of a declared variable through its API (signals, live
    updates); others (undeclared, dead or buried) from storage at once, without their
    ``on_expire``. Return whether there was a value."""
    backend = get_backend()
    var = variable_of(key)
    if var is not None and backend.get(key) is not None:
        if isinstance(var, GlobalState):
            var.delete()
        else:
            var.delete(key.owner)
        return True
    return backend.discard(key)


def expire_now(key: StateKey) -> None:
    """Make a session or page value expire now; the next cleanup runs its ``on_expire``."""
    if key.scope not in EXPIRING:
        raise StateTypeError(
            f"{key.scope} state {key.name!r} never expires: delete it instead.", key.name
        )
    get_backend().expire(key, 0)


def users_of(owners: Iterable[str]) -> dict[str, str]:
    """``{owner: username}`` for the owners whose session belongs to a user.

    One query for the sessions (database session engines; other engines load each session)
    and one for the users, whatever the number of owners.
    """
    owners = {owner for owner in owners if owner}
    keys = {session_of(owner) for owner in owners}
    if not keys:
        return {}
    store = import_module(settings.SESSION_ENGINE).SessionStore
    ids: dict[str, Any] = {}
    if issubclass(store, DatabaseStore):
        rows = store.get_model_class().objects.filter(
            session_key__in=keys, expire_date__gt=timezone.now()
        )
        decoder = store()
        for key, data in rows.values_list("session_key", "session_data"):
            ids[key] = decoder.decode(data).get(SESSION_KEY)
    else:
        for key in keys:
            ids[key] = store(key).load().get(SESSION_KEY)
    user_model = get_user_model()
    pks: dict[str, Any] = {}
    for key, raw in ids.items():
        if raw is None:
            continue
        try:
            pks[key] = user_model._meta.pk.to_python(raw)
        except ValidationError:
            continue
    users = user_model._default_manager.in_bulk(set(pks.values()))
    names = {key: users[pk].get_username() for key, pk in pks.items() if pk in users}
    return {owner: names[session_of(owner)] for owner in owners if session_of(owner) in names}
