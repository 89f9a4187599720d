"""Page ids: the owner of PageState, one per page load (a tab), signed and bound to a session.

``{% statekit_js %}`` gives each rendered page a new id; statekit.js sends it back with
fetch/XHR requests (header ``X-Statekit-Page``) and forms (field ``statekit_page``). A page id
is ``<token>:<binding>:<signature>``: ``binding`` is a digest of the key the session's page ids
are bound to (its first key: ``cycle_key`` at login keeps it, ``flush()`` at logout forgets
it), and the signature (site-wide, SECRET_KEY) covers both. So an id tells apart, without the
session, one this site issued (for this session, or for another one, typically one that has
since ended) from one that was forged or altered; only the first kind is valid, and only in
its own session. Verifying an id never creates or saves a session.

In storage a page's state belongs to ``<session key>.<token>`` (:mod:`statekit.keys`). What
happens when the page closes is in :mod:`statekit.lifecycle.pages`.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.base import SessionBase
from django.core import signing
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from statekit.exceptions import ForgedPageId, PageIdMissing, StalePageId, StateTypeError
from statekit.keys import PAGE_OWNER, page_owner_of
from statekit.state.sessions import request_session, session_key

HEADER = "X-Statekit-Page"
FIELD = "statekit_page"
#: In the session's data after a login: the key its page ids are bound to (see _digest).
BINDING = "_statekit_pages_of"
MAX_LENGTH = 200  # an issued id is about 110 characters
SALT = "statekit.page"


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
    return page_owner_of(key, token)


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
    if isinstance(owner, str) and PAGE_OWNER.fullmatch(owner):
        return owner
    raise StateTypeError(
        f"The owner of {var or 'page state'!r} must be the request, or a page owner from "
        f"statekit.state.pages.page_owner(request), not {owner!r}."
    )


async def apage_owner(owner: Any, var: Any = None) -> str:
    if isinstance(owner, str):
        return page_owner(owner, var)
    return await sync_to_async(page_owner)(owner, var)
