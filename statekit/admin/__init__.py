"""The admin of stored state: ``StateValueAdmin`` (registered for ``StateValue``)."""

from __future__ import annotations

from statekit.admin.values import StateValueAdmin

__all__ = ["StateValueAdmin"]
