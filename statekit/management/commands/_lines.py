"""The lines of ``statekit export`` and ``statekit import``: one JSON object per value."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from statekit.backends import StateKey
from statekit.backends.base import Entry
from statekit.exceptions import StateError
from statekit.keys import EXPIRING, MAX_TTL, SCOPES
from statekit.state.inspection import declared_variable, parse_for
from statekit.state.scopes import GlobalState

FIELDS = ("scope", "owner", "name", "value", "expires_at")


def when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def export_line(entry: Entry) -> str:
    scope, owner, name = entry.key
    record: dict[str, str | None] = {
        "scope": scope,
        "owner": owner,
        "name": name,
        "value": entry.text,
    }
    record["expires_at"] = when(entry.expires_at)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def planned(line: str) -> tuple[StateKey, Any, datetime | None]:
    """Check one export line as a write would, writing nothing; raise StateError."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise StateError(f"not JSON: {exc}") from None
    if not isinstance(record, dict) or set(record) != set(FIELDS):
        raise StateError(f"not an export line: an object of exactly {', '.join(FIELDS)}")
    scope, owner, name, text, expires = (record[field] for field in FIELDS)
    if scope not in SCOPES:
        raise StateError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    if not all(isinstance(part, str) for part in (owner, name, text)):
        raise StateError("owner, name and value must be strings")
    try:
        f"{owner}{name}".encode()
    except UnicodeEncodeError:  # every backend refuses it, after other lines were written
        raise StateError(f"{owner!r} {name!r}: a lone surrogate cannot be stored") from None
    key = StateKey(scope, owner, name)
    var = declared_variable(key)
    if (
        var.key_for() if isinstance(var, GlobalState) else var.key_for(owner)
    ) != key:  # checks the owner
        raise StateError(f"owner {owner!r} is not an owner of {scope} state")
    value = parse_for(key, text)
    if expires is None:
        return key, value, None
    try:
        moment = parse_datetime(expires) if isinstance(expires, str) else None
    except ValueError:  # well formed, but not a time: 2099-13-45
        moment = None
    if moment is None or timezone.is_naive(moment):
        raise StateError(f"expires_at {expires!r} is not an ISO 8601 time with a time zone")
    if scope not in EXPIRING:
        raise StateError(f"{scope} state never expires, but expires_at is {expires}")
    if (moment - timezone.now()).total_seconds() > MAX_TTL:
        raise StateError(f"expires_at {expires} is more than 100 years away (MAX_TTL)")
    return key, value, moment
