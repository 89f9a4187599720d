"""Signals sent by statekit.

``state_changed``
    Sent after a write changed the stored content of a variable (the stored JSON differs).
    A write that stores identical content sends nothing. When the write happens inside a
    database transaction, the signal is sent once that transaction commits.

    sender: the declared variable (a ``GlobalState`` or ``SessionState`` instance).
    kwargs: ``scope`` ("global", "session", ...), ``name`` (str), ``owner`` (the session key,
    or ``None`` for global state), ``old`` and ``new`` (decoded values; ``None`` when the
    value did not exist / was deleted).
"""

from __future__ import annotations

from django.dispatch import Signal

state_changed = Signal()
