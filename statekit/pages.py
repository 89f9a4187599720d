"""Page ids: the owner of PageState, one per page load (a tab), signed and bound to a session.

``{% statekit_js %}`` gives each rendered page a new id; statekit.js sends it back with
fetch/XHR requests (header ``X-Statekit-Page``) and forms (field ``statekit_page``). A page id
is ``<token>:<binding>:<signature>``: ``binding`` is a digest of the key the session's page ids
are bound to (its first key: ``cycle_key`` at login keeps it, ``flush()`` at logout forgets
it), and the signature (site-wide, SECRET_KEY) covers both. So an id tells apart, without the
session, one this site issued (for this session, or for another one, typically one that has
since ended) from one that was forged or altered; only the first kind is valid, and only in
its own session. Verifying an id never creates or saves a session.

In storage a page's state belongs to ``<session key>.<token>``, so it can be traced to its
session (and ends with it). When the page closes (statekit.js posts a ``pagehide`` beacon to
:func:`close_page`), its state is kept ``PAGE_CLOSED_TTL`` seconds more, then expires.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.base import SessionBase
from django.core import signing
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import NoReverseMatch, reverse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt

from statekit.backends import StateKey, get_backend
from statekit.conf import get_settings
from statekit.exceptions import StateError, StateTypeError
from statekit.state import request_session, session_key

logger = logging.getLogger("statekit.pages")

HEADER = "X-Statekit-Page"
FIELD = "statekit_page"
#: In the session's data after a login: the key its page ids are bound to (see _digest).
BINDING = "_statekit_pages_of"
OWNER = re.compile(r"[^.:\s\ud800-\udfff]{1,200}\.[0-9a-f]{32}")
MAX_LENGTH = 200  # an issued id is about 110 characters
SALT = "statekit.page"


class PageIdMissing(StateError, BadRequest):
    """The request carries no page id (answered with 400 Bad Request)."""


class InvalidPageId(StateError):
    """The page id is not valid in this session: one of the two below (answered with 400)."""


class ForgedPageId(InvalidPageId, SuspiciousOperation):
    """The page id was not issued by this site: forged, altered or not a page id (400,
    logged on Django's security logger)."""


class StalePageId(InvalidPageId, BadRequest):
    """The page id was issued by this site to another session, typically one that has since
    ended (logout, expiry): a page left open across a logout, not an attack (400, no
    security log)."""


def _digest(bound: str) -> str:
    """The binding part of a page id: a digest of the key the session's page ids are bound
    to, its first key. cycle_key() keeps that key in the session's data (BINDING), flush()
    forgets it. Nothing is stored until then, so concurrent first pages agree."""
    return hashlib.blake2b(bound.encode(), digest_size=16, person=b"statekit.page").hexdigest()


def new_page(request: HttpRequest) -> str:
    """A new page id for the page being rendered for ``request`` (its session is saved)."""
    session = request_session(request, "page state")
    key = session_key(session)
    binding = _digest(session.get(BINDING) or key)
    return signing.Signer(salt=SALT).sign(f"{secrets.token_hex(16)}:{binding}")


def page_config(request: HttpRequest | None) -> dict[str, Any] | None:
    """statekit.js's page section: a new page id, and where to say the page closed.

    Only when the project declares PageState or a page resource: a page id needs a session
    (it is saved, and its cookie sent), which a site without them should not pay for on
    every page.
    """
    from statekit import page_resources
    from statekit.state import declared

    if request is None or getattr(request, "session", None) is None:
        return None
    if not (declared("page") or page_resources.declared()):
        return None
    try:
        close_url = reverse("statekit:page-close")
    except NoReverseMatch:  # statekit.urls not included: closed pages live until their ttl
        close_url = None
    return {"id": new_page(request), "header": HEADER, "field": FIELD, "closeUrl": close_url}


def _issued(page_id: Any) -> tuple[str, str]:
    """(token, binding) of a page id this site issued, or ForgedPageId."""
    if not isinstance(page_id, str) or len(page_id) > MAX_LENGTH:
        raise ForgedPageId("The statekit page id is not a page id.")
    try:
        token, _, binding = signing.Signer(salt=SALT).unsign(page_id).partition(":")
    except signing.BadSignature:
        raise ForgedPageId(
            "The statekit page id does not verify: it was altered, or not issued by this site."
        ) from None
    return token, binding


def verify(session: SessionBase, page_id: str) -> str:
    """The page's owner in storage (``<session key>.<token>``); ForgedPageId or StalePageId
    (both InvalidPageId) if the id is not valid in ``session``. Never creates a session."""
    token, binding = _issued(page_id)
    bound = session.get(BINDING)  # loads first: a key not stored (any more) then reads as None
    key = session.session_key
    if key is None or not constant_time_compare(binding, _digest(bound or key)):
        raise StalePageId(
            "The statekit page id belongs to another session, most likely one that has "
            "ended (a logout): reload the page."
        )
    return f"{key}.{token}"


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
        return verify(request_session(owner, var or "page state"), page_id_of(owner))
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
    """POST with the page id (sent by statekit.js on ``pagehide``): close the page.

    A page of a session that has ended (the beacon of the page a logout left) has nothing
    left to close: 204, logged at INFO. A forged id is a SuspiciousOperation (400)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        owner = page_owner(request)
    except StalePageId:
        logger.info("statekit: close of a page whose session has ended; nothing to close")
        return HttpResponse(status=204)
    close(owner)
    return HttpResponse(status=204)
