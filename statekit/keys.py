"""Where a value is stored: the scopes, :class:`StateKey`, and the grammar of owners and of
buried values, in one place (the bottom layer: it imports nothing above it).

- The owner is ``""`` for global state, the session key for session state, and
  ``"<session key>.<page token>"`` for page state, so a page's state can be traced to its
  session (and ends with it).
- On a Redis Cluster, keys carry a hash tag, one of ``SHARDS``: all of an owner's keys share
  one (a global variable's keys: the variable's), so each atomic operation stays in one slot.
- A value that expired and was then overwritten before the cleanup claimed it is *buried*:
  kept under the scope ``expired``, due at once, named ``"<scope>:<name>:<token>"``, so the
  cleanup can still run its ``on_expire`` callback.
"""

from __future__ import annotations

import re
import secrets
import zlib
from typing import NamedTuple

from django.db import models

from statekit.exceptions import StateTypeError


class Scope(models.TextChoices):
    GLOBAL = "global", "global"
    SESSION = "session", "session"
    PAGE = "page", "page"
    # A buried value: expired and overwritten before the cleanup ran (see the module doc).
    EXPIRED = "expired", "expired (awaiting cleanup)"


#: The scopes variables are declared in; those whose values belong to a session.
SCOPES = (Scope.GLOBAL, Scope.SESSION, Scope.PAGE)
EXPIRING = (Scope.SESSION, Scope.PAGE)
EXPIRED = Scope.EXPIRED
#: The scope of BrowserState: its values live in the browser; the server keeps only the
#: bundles statekit.js references (statekit.browser.refs) under it, never listed.
BROWSER = "browser"

#: The longest lifetime a value can be given, in seconds (100 years): every backend can
#: store the expiry it makes, and every reader can show it in any time zone. The API
#: (``ttl=``) and ``statekit import`` refuse longer ones, so backends never see them.
MAX_TTL = 100 * 365 * 86400

#: A session key as an owner: ':' and '.' separate the parts of keys; no backend can store
#: a lone surrogate.
SESSION_KEY = re.compile(r"[^:.\s\ud800-\udfff]{1,200}")
#: A page owner: "<session key>.<page token>".
PAGE_OWNER = re.compile(r"[^.:\s\ud800-\udfff]{1,200}\.[0-9a-f]{32}")


class StateKey(NamedTuple):
    scope: str
    owner: str  # see the module doc
    name: str


#: Redis Cluster: the hash tags keys are spread over (each with an expiry index of its own).
SHARDS = 256


def page_owner_of(session_key: str, token: str) -> str:
    """The owner of a page's state: ``"<session key>.<page token>"``."""
    return f"{session_key}.{token}"


def pages_of(session_key: str) -> str:
    """How the owners of a session's pages start."""
    return f"{session_key}."


def session_of(owner: str) -> str:
    """The session key behind a session or page owner."""
    return owner.partition(".")[0]


def owned_by(owner: str, session_or_page: str) -> bool:
    """Whether ``owner`` is ``session_or_page`` or one of that session's pages."""
    return owner == session_or_page or owner.startswith(pages_of(session_or_page))


def renamed(owner: str, old: str, new: str) -> str:
    """``owner`` (a session or page owner) with the session key ``old`` replaced by ``new``
    (a session that moved: login, ``cycle_key``)."""
    return new + owner[len(old) :] if owned_by(owner, old) else owner


def bury(key: StateKey) -> StateKey:
    """Where an expired value waits for the cleanup: a new name each time, so a value buried
    twice keeps both."""
    return StateKey(
        EXPIRED, key.owner, f"{buried_prefix(key.scope)}{key.name}:{secrets.token_hex(6)}"
    )


def buried_prefix(scope: str) -> str:
    """How the names of the buried values of ``scope`` start."""
    return f"{scope}:"


def buried_regex(name: str) -> str:
    """A regular expression of the names of the buried values of variable ``name``."""
    return rf"^[a-z]+:{re.escape(name)}:[0-9a-f]+$"


def origin(key: StateKey) -> tuple[str, str]:
    """The ``(scope, name)`` of the variable a stored value belongs to (also when buried)."""
    if key.scope == EXPIRED:
        scope, _, rest = key.name.partition(":")
        return scope, rest.rpartition(":")[0]
    return key.scope, key.name


def key_text(key: StateKey) -> str:
    """``"<scope>:<owner>:<name>"``: one string for a key (owners never hold a ':')."""
    return ":".join(key)


def parse_key(text: str) -> StateKey:
    """The key :func:`key_text` wrote; StateTypeError if ``text`` is not one."""
    parts = text.split(":", 2)
    if len(parts) != 3 or parts[0] not in Scope.values:
        raise StateTypeError(f"{text!r} is not a statekit key ('<scope>:<owner>:<name>').")
    return StateKey(*parts)


def shard_of(key: StateKey) -> int:
    """The hash tag of ``key`` on a Redis Cluster: its owner's, or for global state its
    variable's (also when buried, so a value and its grave share a slot)."""
    basis = key.owner or origin(key)[1]
    return zlib.crc32(basis.encode("utf-8", "surrogatepass")) % SHARDS
