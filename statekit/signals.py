"""Signals sent by statekit.

``state_changed``
    Sent after a write changed the stored content of a variable (the stored JSON differs).
    A write that stores identical content sends nothing. When the write happens inside a
    database transaction, the signal is sent once that transaction commits; an exception in
    a receiver then is logged (the write has committed), not raised.

    sender: the declared variable (a ``GlobalState``, ``SessionState``... instance; the first
    one, when the same declaration ran twice).
    kwargs: ``scope`` ("global", "session", ...), ``name`` (str), ``owner`` (the session key,
    or ``None`` for global state), ``old`` and ``new`` (decoded values; ``None`` when the
    value did not exist / was deleted; after ``incr``, ``old`` is what ``get()`` returned
    before, the default when nothing was stored).

``variable_declared``
    Sent when a variable is declared (the first declaration of its scope and name).

    sender: the new variable. No other kwargs.

``browser_state_rejected``
    Sent when a request carried a value of a ``BrowserState`` that the server refused: its
    signature or encryption does not verify (edited in the browser, or made with a key that is
    no longer in SECRET_KEY / SECRET_KEY_FALLBACKS), it is malformed, or it is over the
    state's ``max_bytes``. The request then reads the state's default. A value older than
    ``max_age`` falls back to the default without this signal.

    sender: the ``BrowserState`` instance.
    kwargs: ``request`` (the HttpRequest), ``name`` (str), ``reason`` ("tampered",
    "malformed" or "too_large") and ``detail`` (str, a message for humans).

Lifecycle signals (sent by :mod:`statekit.lifecycle`; session resources subscribe):

``session_moved``
    A session got a new key (``cycle_key()``, at login) and its state moved to it.
    kwargs: ``old`` and ``new`` (the session keys).

``session_ended``
    A session ended through ``flush()`` (logout). kwargs: ``session_key``.

``page_closed``
    A page closed (its ``pagehide`` beacon). kwargs: ``owner`` (``"<session key>.<token>"``).
"""

from __future__ import annotations

from django.dispatch import Signal

state_changed = Signal()
browser_state_rejected = Signal()
variable_declared = Signal()
session_moved = Signal()
session_ended = Signal()
page_closed = Signal()
