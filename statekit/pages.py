"""Page ids: the owner of PageState, one per page load (a tab), signed and bound to a session.

``{% statekit_js %}`` gives each rendered page a new id; statekit.js sends it back with
fetch/XHR requests (header ``X-Statekit-Page``) and forms (field ``statekit_page``). A page id
is ``<token>:<signature>``; the signature's salt holds a random secret kept in the Django
session, so an id is only valid in the session that received it, survives the key change at
login (``cycle_key`` keeps the session's data) and dies with ``flush()`` at logout.

In storage a page's state belongs to ``<session key>.<token>``, so it can be traced to its
session (and ends with it). When the page closes (statekit.js posts a ``pagehide`` beacon to
:func:`close_page`), its state is kept ``PAGE_CLOSED_TTL`` seconds more, then expires.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.base import SessionBase
from django.core import signing
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import NoReverseMatch, reverse
from django.views.decorators.csrf import csrf_exempt

from statekit.backends import StateKey, get_backend
from statekit.conf import get_settings
from statekit.exceptions import StateError, StateTypeError
from statekit.state import owner_session, session_key

HEADER = "X-Statekit-Page"
FIELD = "statekit_page"
#: In the session's data after a login: the key its page ids are bound to (see _binding).
BINDING = "_statekit_pages_of"
OWNER = re.compile(r"[^.:\s]+\.[0-9a-f]{32}")


class PageIdMissing(StateError, BadRequest):
    """The request carries no page id (answered with 400 Bad Request)."""


class InvalidPageId(StateError, SuspiciousOperation):
    """The page id is forged, altered, or from another session (400, logged as security)."""


def _signer(session: SessionBase) -> signing.Signer:
    """Signs page ids for one session: the salt holds the key the session's page ids are
    bound to, its first key. cycle_key() keeps it in the session's data (BINDING), flush()
    forgets it. Nothing is stored until then, so concurrent first pages agree."""
    binding = session.get(BINDING) or session_key(session)
    return signing.Signer(salt=f"statekit.page.{binding}")


def new_page(request: HttpRequest) -> str:
    """A new page id for the page being rendered for ``request``."""
    return _signer(owner_session(request, "page state")).sign(secrets.token_hex(16))


def page_config(request: HttpRequest | None) -> dict[str, Any] | None:
    """statekit.js's page section: a new page id, and where to say the page closed.

    Only when the project declares PageState: a page id needs a session (it is saved, and
    its cookie sent), which a site without page state should not pay for on every page.
    """
    from statekit.state import declared

    if request is None or getattr(request, "session", None) is None or not declared("page"):
        return None
    try:
        close_url = reverse("statekit:page-close")
    except NoReverseMatch:  # statekit.urls not included: closed pages live until their ttl
        close_url = None
    return {"id": new_page(request), "header": HEADER, "field": FIELD, "closeUrl": close_url}


def verify(session: SessionBase, page_id: str) -> str:
    """The page's owner in storage (``<session key>.<token>``), or InvalidPageId."""
    if not isinstance(page_id, str) or len(page_id) > 200:
        raise InvalidPageId("The statekit page id is not a page id.")
    try:
        token = _signer(session).unsign(page_id)
    except signing.BadSignature:
        raise InvalidPageId(
            "The statekit page id does not verify: it was altered, or it belongs to "
            "another session."
        ) from None
    return f"{session_key(session)}.{token}"


def page_id_of(request: HttpRequest) -> str:
    """The page id a request carries (header, then form field, then query string)."""
    page_id = request.headers.get(HEADER)
    if page_id is None and request.method == "POST":
        page_id = request.POST.get(FIELD)
    if page_id is None:
        page_id = request.GET.get(FIELD)
    if not page_id:
        raise PageIdMissing(
            f"The request carries no statekit page id (the {HEADER} header or the {FIELD} "
            "field): render {% statekit_js %} on the page, and make requests with fetch, "
            "XHR or forms from it."
        )
    return page_id


def page_owner(owner: Any, var: Any = None) -> str:
    """The storage owner of a page: from a request, or an owner string given as is."""
    if isinstance(owner, HttpRequest):
        return verify(owner_session(owner, var or "page state"), page_id_of(owner))
    if isinstance(owner, str) and OWNER.fullmatch(owner):
        return owner
    raise StateTypeError(
        f"The owner of {var or 'page state'!r} must be the request, or a page owner from "
        f"statekit.pages.page_owner(request), not {owner!r}."
    )


async def apage_owner(owner: Any, var: Any = None) -> str:
    if isinstance(owner, str):
        return page_owner(owner, var)
    return await sync_to_async(page_owner)(owner, var)


def close(owner: str) -> None:
    """The page closed: its state lives PAGE_CLOSED_TTL seconds more, its resources close."""
    from statekit.resources import page_closed
    from statekit.state import declared

    ttl = float(get_settings()["PAGE_CLOSED_TTL"])
    backend = get_backend()
    for var in declared("page"):
        backend.expire(StateKey("page", owner, var.name), ttl)
    page_closed(owner)


@csrf_exempt  # a beacon cannot send the CSRF header; the page id is the proof needed
def close_page(request: HttpRequest) -> HttpResponse:
    """POST with the page id (sent by statekit.js on ``pagehide``): close the page."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    close(page_owner(request))
    return HttpResponse(status=204)
