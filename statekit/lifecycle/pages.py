"""A page's life: its id handed to statekit.js, and its close (the ``pagehide`` beacon).

When the page closes (statekit.js posts a ``pagehide`` beacon to :func:`close_page`), its
state is kept ``PAGE_CLOSED_TTL`` seconds more, then expires; ``page_closed`` is sent, so its
page resources close.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import NoReverseMatch, reverse
from django.views.decorators.csrf import csrf_exempt

from statekit.backends import get_backend
from statekit.conf import get_settings
from statekit.exceptions import StalePageId
from statekit.keys import Scope, StateKey
from statekit.lifecycle.page_resources import PageResource
from statekit.lifecycle.resources import any_in_use
from statekit.registry import declared
from statekit.signals import page_closed
from statekit.state.pages import FIELD, HEADER, new_page, page_owner

logger = logging.getLogger("statekit.pages")


def page_config(request: HttpRequest | None) -> dict[str, Any] | None:
    """statekit.js's page section: a new page id, and where to say the page closed.

    Only when the project declares PageState or a page resource: a page id needs a session
    (it is saved, and its cookie sent), which a site without them should not pay for on
    every page.
    """
    if request is None or getattr(request, "session", None) is None:
        return None
    if not (declared(Scope.PAGE) or any_in_use(PageResource)):
        return None
    try:
        close_url = reverse("statekit:page-close")
    except NoReverseMatch:  # statekit.urls not included: closed pages live until their ttl
        close_url = None
    return {"id": new_page(request), "header": HEADER, "field": FIELD, "closeUrl": close_url}


def close(owner: str) -> None:
    """The page closed: its state lives PAGE_CLOSED_TTL seconds more, its resources close."""
    page_closed.send(sender=None, owner=owner)  # first: its resources close, store up or not
    ttl = float(get_settings()["PAGE_CLOSED_TTL"])
    backend = get_backend()
    for var in declared(Scope.PAGE):
        backend.expire(StateKey(Scope.PAGE, owner, var.name), ttl)


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
