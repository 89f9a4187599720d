"""Page resources: an object that cannot be serialized, one per page load (a tab).

``page_resource(factory, ttl=..., on_close=..., max_size=...)`` returns a pool; its
``get(request)`` builds the object once for the page the request comes from (its page id,
sent by statekit.js) and returns the same instance to that page's later requests, like the
dictionary Gradio's guide keys by ``session_hash``. Two tabs get two objects; a reload is a
new page and gets a new one. It is closed (``on_close(obj)``, else ``obj.close()``) when:

- that page closes (statekit.js's ``pagehide`` beacon);
- its session ends (logout, expiry, ``clearsessions``); a login keeps it;
- it was not used for ``ttl`` seconds (a page the browser discards sends no beacon);
- the pool holds ``max_size`` objects and a newer one evicts the least recently used.

The pool, its locking, LRU bound and background closing are those of session resources
(:class:`statekit.lifecycle.resources.ResourcePool`); only the owner differs: the page's
storage owner ``<session key>.<token>`` (:func:`statekit.pages.page_owner`). A request without a
page id is refused (``PageIdMissing``, 400), as one whose page id is refused
(``InvalidPageId``, 400): nothing is built and no session is created.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from statekit.lifecycle.resources import ResourcePool
from statekit.state.pages import page_owner


class PageResource(ResourcePool):
    """One object per page load; ``owner`` is a request or a page owner string."""

    kind = "page_resource"

    def _owner(self, owner: Any) -> str:
        return page_owner(owner, self)

    def close(self, owner: Any) -> None:
        """Close this page's object now (in the background); the next ``get`` builds another."""
        page = page_owner(owner, self)
        self._take(lambda key, entry: key == page)


def page_resource(
    factory: Callable[[], Any],
    *,
    ttl: float | timedelta | None = None,
    on_close: Callable[[Any], Any] | None = None,
    max_size: int = 1000,
) -> PageResource:
    """A pool of one ``factory()`` object per page load, in this process (see module doc)."""
    return PageResource(factory, ttl=ttl, on_close=on_close, max_size=max_size)
