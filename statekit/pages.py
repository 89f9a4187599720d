"""The page-id names documented as ``statekit.pages``: page ids are made and verified in
:mod:`statekit.state.pages`; the errors are in :mod:`statekit.exceptions`."""

from __future__ import annotations

from statekit.exceptions import ForgedPageId, InvalidPageId, PageIdMissing, StalePageId
from statekit.state.pages import apage_owner, page_owner

__all__ = [
    "ForgedPageId",
    "InvalidPageId",
    "PageIdMissing",
    "StalePageId",
    "apage_owner",
    "page_owner",
]
