"""Browser state too large for a request header: uploaded once, then referenced by its hash.

Whatever the number and size of the states, statekit.js keeps what it adds to a request's
headers under :data:`HEADER_BUDGET` characters (plus the page id and a reference). The entries
that fit go inline, in ``X-Statekit-Browser``; the others form a *bundle* (a JSON object, name
to entry) that statekit.js uploads once to ``statekit/browser/`` (see
:mod:`statekit.browser.upload`) and then references by its hash in ``X-Statekit-Browser-Ref``.

The bundle is stored content-addressed in the statekit backend: the key is the SHA-256 of the
exact stored text, kept :data:`REF_TTL` seconds after its last use. Knowing a reference means
knowing the value, so the store discloses nothing. A reference the server no longer has makes
its states read their defaults for that request (never an error) and the response says so in
``X-Statekit-Browser-Missing``, which makes statekit.js upload the bundle again.

The other way, the writes of a response (``BrowserState.set`` / ``delete``) that do not fit in
:data:`HEADER_BUDGET` characters are kept as a *writes bundle* under a random reference, for
:data:`WRITES_TTL` seconds: the response names it in ``X-Statekit-Browser-Set-Ref`` (statekit.js
fetches it from ``statekit/browser/writes/``, see :mod:`statekit.browser.upload`, before the
page sees the response), or the carry cookie names it (the next request loads it). A random
reference, unlike a hash, cannot be guessed from the values, so only that browser learns it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from typing import Any

from django.db import DatabaseError

from statekit.backends import get_backend
from statekit.exceptions import BackendUnavailable
from statekit.keys import BROWSER, StateKey
from statekit.registry import declared

logger = logging.getLogger("statekit.browser")

HEADER = "X-Statekit-Browser"
REF_HEADER = "X-Statekit-Browser-Ref"
SET_REF_HEADER = "X-Statekit-Browser-Set-Ref"
MISSING_HEADER = "X-Statekit-Browser-Missing"
#: Characters of X-Statekit-Browser that statekit.js sends at most (the rest goes by reference).
HEADER_BUDGET = 1536
#: Seconds a bundle is kept after its last upload or use.
REF_TTL = 3600
#: Seconds the writes of a response are kept for statekit.js (or the next request) to fetch.
WRITES_TTL = 600
REF = re.compile(r"[0-9a-f]{64}")

#: Failures of the store: the request goes on, its bundled states read their defaults.
STORE_ERRORS = (BackendUnavailable, DatabaseError)


def _key(owner: str) -> StateKey | None:
    # Kept as browser state of a declared name (the first), so the cleanup of expired values
    # finds a declared variable, with no on_expire, and deletes it quietly.
    names = [state.name for state in declared(BROWSER)]
    return StateKey(BROWSER, owner, names[0]) if names else None


def ascii_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


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
        _failed(ref, exc)
        return None


async def aload(ref: str) -> str | None:
    key = _checked(ref)
    try:
        return None if key is None else _found(ref, await get_backend().aget(key, REF_TTL))
    except STORE_ERRORS as exc:
        _failed(ref, exc)
        return None


# -- the writes of a response ----------------------------------------------------------------


def split(writes: dict[str, Any], budget: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(inline, left)``: the most writes whose ASCII JSON fits in ``budget`` characters (the
    smallest first), and the others."""
    pieces = sorted((len(ascii_json({name: entry})) - 2, name) for name, entry in writes.items())
    inline: dict[str, Any] = {}
    left: dict[str, Any] = {}
    size = 2  # "{}"
    for length, name in pieces:
        if size + length + 1 <= budget:
            inline[name] = writes[name]
            size += length + 1
        else:
            left[name] = writes[name]
    return inline, left


def _writes_key(ref: str) -> StateKey | None:
    return _key(f"w{ref}") if REF.fullmatch(ref) else None


def _not_kept(writes: dict[str, Any], exc: Exception) -> None:
    logger.warning(
        "Browser state: the writes of %s cannot be kept for the browser (%s); they are lost.",
        ", ".join(map(repr, sorted(writes))),
        exc,
    )


def keep_writes(writes: dict[str, Any]) -> str | None:
    """Keep ``writes`` for WRITES_TTL seconds; their reference, or None (logged) on failure."""
    ref = secrets.token_hex(32)
    key = _writes_key(ref)
    assert key is not None  # writes are of declared states
    try:
        get_backend().set(key, ascii_json(writes), WRITES_TTL)
    except STORE_ERRORS as exc:
        _not_kept(writes, exc)
        return None
    return ref


async def akeep_writes(writes: dict[str, Any]) -> str | None:
    ref = secrets.token_hex(32)
    key = _writes_key(ref)
    assert key is not None
    try:
        await get_backend().aset(key, ascii_json(writes), WRITES_TTL)
    except STORE_ERRORS as exc:
        _not_kept(writes, exc)
        return None
    return ref


def _lost(ref: str, why: str) -> None:
    logger.warning("Browser state: the writes %r are lost: %s.", ref[:64], why)


def _writes(ref: str, text: str | None) -> Any:
    if text is None:
        return _lost(ref, f"not stored (older than {WRITES_TTL} s, or the store was emptied)")
    return json.loads(text)  # stored by keep_writes: an object


def load_writes(ref: str) -> Any:
    """The writes kept as ``ref`` (``{name: entry}``), or None (logged) when they are lost."""
    key = _writes_key(ref)
    if key is None:
        return _lost(ref, "not a reference")
    try:
        return _writes(ref, get_backend().get(key))
    except STORE_ERRORS as exc:
        return _lost(ref, f"the store is unavailable ({exc})")


async def aload_writes(ref: str) -> Any:
    key = _writes_key(ref)
    if key is None:
        return _lost(ref, "not a reference")
    try:
        return _writes(ref, await get_backend().aget(key))
    except STORE_ERRORS as exc:
        return _lost(ref, f"the store is unavailable ({exc})")
