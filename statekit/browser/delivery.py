"""How the browser-state writes of a request reach the browser with its response.

:class:`statekit.middleware.StatekitMiddleware` routes the writes a request queued
(``BrowserState.set`` / ``delete``):

- to a fetch/XHR from statekit.js: in the ``X-Statekit-Browser-Set`` response header;
- to a page rendered with ``{% statekit_js %}``: in the page (the tag embeds the writes queued
  before it rendered; the middleware adds later ones before ``</body>``);
- otherwise (a redirect, or a response that cannot carry them): in a signed cookie, until the
  next response that can deliver them.

What the header and the cookie carry stays within :data:`HEADER_BUDGET` characters whatever
is written: the writes that do not fit are kept in the backend (:mod:`statekit.browser.refs`)
and only their reference is sent, in ``X-Statekit-Browser-Set-Ref`` (statekit.js fetches them
before the page sees the response) or in the cookie (the next request loads them).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import NoReverseMatch, reverse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.html import json_script

from statekit.browser.refs import (
    HEADER,
    HEADER_BUDGET,
    MISSING_HEADER,
    REF_HEADER,
    SET_REF_HEADER,
    ascii_json,
    split,
)

if TYPE_CHECKING:
    from statekit.browser.transport import BrowserExchange

logger = logging.getLogger("statekit.browser")

SET_HEADER = "X-Statekit-Browser-Set"
WRITES_ID = "statekit-writes"
COOKIE = "statekit_browser"
COOKIE_SALT = "statekit.browser.carry"
#: Characters of JSON the carry cookie holds: base64 makes 4/3 of them, under the budget.
COOKIE_BUDGET = HEADER_BUDGET * 3 // 4 - 80
BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)

Route = tuple[str | None, dict[str, Any], dict[str, Any]]


def writes_url() -> str | None:
    """Where statekit.js fetches writes kept by reference; None without ``statekit.urls``."""
    try:
        return reverse("statekit:browser-writes")
    except NoReverseMatch:
        return None


def carried(request: HttpRequest) -> tuple[dict[str, Any], str | None] | None:
    """The writes in the carry cookie, and the reference of those kept in the backend."""
    value = request.get_signed_cookie(COOKIE, default=None, salt=COOKIE_SALT)
    try:
        found = json.loads(base64.urlsafe_b64decode(value or ""))
    except (ValueError, binascii.Error, RecursionError):
        found = None
    if isinstance(found, list) and len(found) == 2 and isinstance(found[0], dict):
        writes, ref = found
        return writes, ref if isinstance(ref, str) else None
    logger.warning("Browser state: the %s cookie is invalid; it is dropped.", COOKIE)
    return None


def _inject(response: HttpResponseBase, writes: dict[str, Any]) -> bool:
    """Add the writes to an HTML page before ``</body>``; False if it cannot be done."""
    if (
        not isinstance(response, HttpResponse)  # streaming: no content to edit
        or response.has_header("Content-Encoding")
        or "html" not in response.get("Content-Type", "")
    ):
        return False
    try:
        content = response.content.decode(response.charset)
    except (UnicodeDecodeError, LookupError):
        return False
    ends = list(BODY_END.finditer(content))
    at = ends[-1].start() if ends else len(content)
    response.content = content[:at] + json_script(writes, WRITES_ID) + content[at:]
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))
    return True


def route(ex: BrowserExchange, response: HttpResponseBase) -> Route:
    """``(route, inline, left)``: where the pending writes go ("header", "cookie" or None),
    those sent there, and those to keep by reference. A page gets its writes here."""
    if ex.read_header:
        patch_vary_headers(response, (HEADER, REF_HEADER) if ex.ref else (HEADER,))
    if ex.missing:
        response[MISSING_HEADER] = "1"
    if response.status_code >= 500:
        # Like sessions: a failed request writes nothing (carried writes stay in the cookie).
        return None, {}, {}
    writes, ex.pending = ex.pending, {}
    if writes and not 300 <= response.status_code < 400:
        if ex.from_js:
            inline, left = split(writes, HEADER_BUDGET)
            if left and writes_url() is None:
                logger.warning(
                    "Browser state: the writes of %s are too large for the %s header and "
                    "statekit.urls is not included to fetch them from; they are lost.",
                    ", ".join(map(repr, sorted(left))),
                    SET_HEADER,
                )
                left = {}
            return "header", inline, left
        if ex.page and _inject(response, writes):
            writes, ex.delivered = {}, True
    if writes or ex.carried:
        return ("cookie", *split(writes, COOKIE_BUDGET))
    return None, {}, {}


def deliver(
    ex: BrowserExchange,
    response: HttpResponseBase,
    where: str | None,
    inline: dict[str, Any],
    ref: str | None,
) -> HttpResponseBase:
    """Put the writes of :func:`route` (``ref``: those kept by reference) in the response."""
    if where == "header":
        if inline:
            response[SET_HEADER] = ascii_json(inline)
        if ref:
            response[SET_REF_HEADER] = ref
        ex.delivered = ex.delivered or bool(inline or ref)
        if ex.carried:  # delivered now: the cookie is spent
            _carry(ex.request, response, {}, None)
    elif where == "cookie":
        _carry(ex.request, response, inline, ref)
    if ex.delivered or (where == "cookie" and (inline or ref)):
        patch_cache_control(response, private=True)
    return response


def _carry(
    request: HttpRequest, response: HttpResponseBase, inline: dict[str, Any], ref: str | None
) -> None:
    """Keep the writes in a signed cookie for the next response (or drop the spent one)."""
    if inline or ref:
        value = base64.urlsafe_b64encode(ascii_json([inline, ref]).encode()).decode()
        response.set_signed_cookie(
            COOKIE,
            value,
            salt=COOKIE_SALT,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )
    elif COOKIE in request.COOKIES:
        response.delete_cookie(COOKIE, samesite="Lax")
