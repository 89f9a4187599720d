"""Browser state too large for a request header: uploaded once, then referenced by its hash.

Whatever the number and size of the states, statekit.js keeps what it adds to a request's
headers under :data:`HEADER_BUDGET` characters (plus the page id and a reference). The entries
that fit go inline, in ``X-Statekit-Browser``; the others form a *bundle* (a JSON object, name
to entry) that statekit.js uploads once to ``statekit/browser/`` (see
:mod:`statekit.browser_upload`) and then references by its hash in ``X-Statekit-Browser-Ref``.

The bundle is stored content-addressed in the statekit backend: the key is the SHA-256 of the
exact stored text, kept :data:`REF_TTL` seconds after its last use. Knowing a reference means
knowing the value, so the store discloses nothing. A reference the server no longer has makes
its states read their defaults for that request (never an error) and the response says so in
``X-Statekit-Browser-Missing``, which makes statekit.js upload the bundle again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

from django.db import DatabaseError

from statekit.backends import get_backend
from statekit.backends.base import StateKey
from statekit.exceptions import BackendUnavailable
from statekit.state import declared

logger = logging.getLogger("statekit.browser")

REF_HEADER = "X-Statekit-Browser-Ref"
MISSING_HEADER = "X-Statekit-Browser-Missing"
#: Characters of X-Statekit-Browser that statekit.js sends at most (the rest goes by reference).
HEADER_BUDGET = 1536
#: Seconds a bundle is kept after its last upload or use.
REF_TTL = 3600
REF = re.compile(r"[0-9a-f]{64}")

#: Failures of the store: the request goes on, its bundled states read their defaults.
STORE_ERRORS = (BackendUnavailable, DatabaseError)


def _key(ref: str) -> StateKey | None:
    # Kept as browser state of a declared name (the first), so the cleanup of expired values
    # finds a declared variable, with no on_expire, and deletes it quietly.
    names = [state.name for state in declared("browser")]
    return StateKey("browser", ref, names[0]) if names else None


def bundle_text(entries: dict[str, Any]) -> str:
    return json.dumps(entries, separators=(",", ":"), sort_keys=True)


def store(entries: dict[str, Any]) -> str:
    """Keep the bundle ``entries``; return its reference. Raises one of STORE_ERRORS."""
    text = bundle_text(entries)
    ref = hashlib.sha256(text.encode()).hexdigest()
    key = _key(ref)
    assert key is not None  # entries are of declared states
    get_backend().set(key, text, REF_TTL)
    return ref


def _checked(ref: str) -> StateKey | None:
    key = _key(ref) if REF.fullmatch(ref) else None
    if key is None:
        logger.warning("Browser state: the %s header is not a reference; ignored.", REF_HEADER)
    return key


def _found(ref: str, text: str | None) -> str | None:
    if text is None:
        logger.info(
            "Browser state: the bundle %s is no longer stored; its states read their "
            "defaults, and statekit.js uploads it again.",
            ref,
        )
    return text


def _failed(ref: str, exc: Exception) -> None:
    logger.warning(
        "Browser state: the bundle %s cannot be read (%s); its states read their defaults.",
        ref,
        exc,
    )


def load(ref: str) -> str | None:
    """The stored bundle text of ``ref``, or None (logged) when the server does not have it."""
    key = _checked(ref)
    try:
        return None if key is None else _found(ref, get_backend().get(key, REF_TTL))
    except STORE_ERRORS as exc:
        return _failed(ref, exc)


async def aload(ref: str) -> str | None:
    key = _checked(ref)
    try:
        return None if key is None else _found(ref, await get_backend().aget(key, REF_TTL))
    except STORE_ERRORS as exc:
        return _failed(ref, exc)
