"""The exchange of browser state between statekit.js and the server, one request at a time.

statekit.js sends the entries the page holds (see :mod:`statekit.browser`) as JSON with every
same-origin fetch/XHR request, in the ``X-Statekit-Browser`` header (within a budget: the
entries that do not fit are referenced, see :mod:`statekit.browser.refs`), and with every
same-origin POST form, in the ``_statekit_browser`` field. ``StatekitMiddleware`` delivers the
writes a request queued (``BrowserState.set`` / ``delete``) with its response, in a header, the
page or a cookie, within the same budget (see :mod:`statekit.browser.delivery`).

A response with a 5xx status delivers nothing, as SessionMiddleware saves nothing then.

Responses that deliver writes, or that read the header, are marked ``Cache-Control: private``
and ``Vary: X-Statekit-Browser``, so no shared cache hands one browser's state to another.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import HttpRequest, UnreadablePostError
from django.http.multipartparser import MultiPartParserError

from statekit.browser.refs import (
    HEADER,
    REF_HEADER,
    load,
)
from statekit.exceptions import StateTypeError
from statekit.keys import BROWSER
from statekit.registry import declared

logger = logging.getLogger("statekit.browser")

FIELD = "_statekit_browser"
# The headers as request.META names: reading META directly spares every request building
# request.headers (a dict of all its headers) when it does not come from statekit.js.
HEADER_META = "HTTP_" + HEADER.upper().replace("-", "_")
REF_HEADER_META = "HTTP_" + REF_HEADER.upper().replace("-", "_")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

Entry = dict[str, Any] | None


class BrowserExchange:
    """What one request exchanges with statekit.js: the entries it sent, the writes queued."""

    def __init__(self, request: HttpRequest, *, delivering: bool) -> None:
        self.request = request
        #: The middleware runs, so writes reach the browser.
        self.delivering = delivering
        #: The request comes from statekit.js (fetch/XHR), which applies SET_HEADER.
        self.from_js = HEADER_META in request.META
        #: Every write of this request, by state name (None: remove). Read back by get().
        self.writes: dict[str, Entry] = {}
        #: The writes not delivered yet.
        self.pending: dict[str, Entry] = {}
        #: Verified JSON text per state name (None: the default), for BrowserState.get().
        self.texts: dict[str, str | None] = {}
        self.page = False  # {% statekit_js %} rendered in this response
        self.delivered = False  # the response carries writes for this browser
        self.carried = False  # the request came with the carry cookie
        self.carried_ref: str | None = None  # the reference of carried writes kept by the server
        self.read_header = False
        self._received: dict[str, Any] | None = None
        #: The reference to the bundle of entries too large for the header (browser_refs).
        self.ref = request.META.get(REF_HEADER_META) if self.from_js else None
        self.bundle: str | None = None  # its stored text, once loaded
        self.loaded = False
        self.missing = False  # the server does not have it: statekit.js uploads it again

    def take_bundle(self, text: str | None) -> None:
        self.bundle, self.loaded, self.missing = text, True, text is None

    def queue(self, name: str, entry: Entry) -> None:
        self.writes[name] = entry
        self.pending[name] = entry

    def queue_carried(self, writes: Any) -> None:
        """Queue the writes an earlier response could not deliver (``{name: entry}``)."""
        for name, entry in (writes if isinstance(writes, dict) else {}).items():
            if entry is None or isinstance(entry, dict):
                self.queue(name, entry)

    def take_for_page(self) -> dict[str, Entry]:
        """The writes for the page that ``{% statekit_js %}`` renders (once per response)."""
        self.page = True
        if self.from_js:  # A page fetched by script: statekit.js is already running.
            return {}
        writes, self.pending = self.pending, {}
        self.delivered = self.delivered or bool(writes)
        return writes

    def received(self) -> dict[str, Any]:
        """The entries the page sent, by state name (parsed once, not yet verified)."""
        if self._received is None:
            if self.ref is not None and not self.loaded:
                self.take_bundle(load(self.ref))
            self._received = {**self._parse_bundle(), **self._parse()}
        return self._received

    def _parse_bundle(self) -> dict[str, Any]:
        if self.bundle is None:
            return {}
        self.read_header = True
        found = json.loads(self.bundle)  # stored by browser_refs.store: an object
        return found if isinstance(found, dict) else {}

    def _raw(self) -> tuple[str | None, str]:
        request = self.request
        header = request.headers.get(HEADER)
        if header is not None:
            self.read_header = True
            return header, f"the {HEADER} header"
        if request.method != "POST" or request.content_type not in FORM_TYPES:
            return None, ""
        try:
            return request.POST.get(FIELD), f"the {FIELD} form field"
        except (
            MultiPartParserError,
            RequestDataTooBig,
            SuspiciousOperation,
            TooManyFieldsSent,
            UnreadablePostError,
        ) as exc:
            logger.warning("Browser state: the form data cannot be read (%s).", exc)
            return None, ""

    def _parse(self) -> dict[str, Any]:
        raw, where = self._raw()
        if not raw:
            return {}
        states = declared(BROWSER)
        limit = sum(state.wire_limit for state in states)
        if len(raw) > limit:
            logger.warning(
                "Browser state: %s is %d characters, over the %d the declared states may "
                "send; every browser state of this request reads its default.",
                where,
                len(raw),
                limit,
            )
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            logger.warning("Browser state: %s is not JSON (%s); using the defaults.", where, exc)
            return {}
        if not isinstance(data, dict):
            logger.warning(
                "Browser state: %s is a JSON %s, not an object; using the defaults.",
                where,
                type(data).__name__,
            )
            return {}
        return data


def exchange(request: Any) -> BrowserExchange:
    """The browser-state exchange of ``request`` (made on first use without the middleware)."""
    if not isinstance(request, HttpRequest):
        # Django REST framework's Request wraps the HttpRequest.
        request = getattr(request, "_request", request)
        if not isinstance(request, HttpRequest):
            raise StateTypeError(
                f"Browser state needs the HttpRequest of the view, not {request!r}."
            )
    found = request.__dict__.get("_statekit_browser")
    if found is None:
        found = request.__dict__["_statekit_browser"] = BrowserExchange(request, delivering=False)
    return found
