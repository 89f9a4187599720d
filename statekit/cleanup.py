"""``statekit.cleanup.cleanup()``, as documented: the cleanup lives in
:mod:`statekit.lifecycle.cleanup`."""

from __future__ import annotations

from statekit.lifecycle.cleanup import Report, cleanup

__all__ = ["Report", "cleanup"]
