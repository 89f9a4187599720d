"""The exchange of browser state between statekit.js and the server, one request at a time.

statekit.js sends the entries the page holds (see :mod:`statekit.browser`) as JSON with every
same-origin fetch/XHR request, in the ``X-Statekit-Browser`` header (within a budget: the
entries that do not fit are referenced, see :mod:`statekit.browser_refs`), and with every
same-origin POST form, in the ``_statekit_browser`` field. :class:`StatekitMiddleware` delivers the
writes a request queued (``BrowserState.set`` / ``delete``) with its response:

- to a fetch/XHR from statekit.js: in the ``X-Statekit-Browser-Set`` response header;
- to a page rendered with ``{% statekit_js %}``: in the page (the tag embeds the writes queued
  before it rendered; the middleware adds later ones before ``</body>``);
- otherwise (a redirect, or a response that cannot carry them): in a signed cookie, until the
  next response that can deliver them.

A response with a 5xx status delivers nothing, as SessionMiddleware saves nothing then.

Responses that deliver writes, or that read the header, are marked ``Cache-Control: private``
and ``Vary: X-Statekit-Browser``, so no shared cache hands one browser's state to another.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, HttpResponseBase, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.html import json_script

from statekit.browser_refs import MISSING_HEADER, REF_HEADER, aload, load
from statekit.exceptions import BackendUnavailable, StateTypeError
from statekit.sessions import watch as watch_session
from statekit.state import declared

logger = logging.getLogger("statekit.browser")

HEADER = "X-Statekit-Browser"
SET_HEADER = "X-Statekit-Browser-Set"
FIELD = "_statekit_browser"
WRITES_ID = "statekit-writes"
COOKIE = "statekit_browser"
COOKIE_SALT = "statekit.browser.carry"
#: Browsers keep cookies of up to 4096 bytes, name and attributes included.
COOKIE_MAX_BYTES = 3900
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)

Entry = dict[str, Any] | None


class BrowserExchange:
    """What one request exchanges with statekit.js: the entries it sent, the writes queued."""

    def __init__(self, request: HttpRequest, *, delivering: bool) -> None:
        self.request = request
        #: The middleware runs, so writes reach the browser.
        self.delivering = delivering
        #: The request comes from statekit.js (fetch/XHR), which applies SET_HEADER.
        self.from_js = HEADER in request.headers
        #: Every write of this request, by state name (None: remove). Read back by get().
        self.writes: dict[str, Entry] = {}
        #: The writes not delivered yet.
        self.pending: dict[str, Entry] = {}
        #: Verified JSON text per state name (None: the default), for BrowserState.get().
        self.texts: dict[str, str | None] = {}
        self.page = False  # {% statekit_js %} rendered in this response
        self.delivered = False  # the response carries writes for this browser
        self.carried = False  # the request came with the carry cookie
        self.read_header = False
        self._received: dict[str, Any] | None = None
        #: The reference to the bundle of entries too large for the header (browser_refs).
        self.ref = request.headers.get(REF_HEADER) if self.from_js else None
        self.bundle: str | None = None  # its stored text, once loaded
        self.loaded = False
        self.missing = False  # the server does not have it: statekit.js uploads it again

    def take_bundle(self, text: str | None) -> None:
        self.bundle, self.loaded, self.missing = text, True, text is None

    def queue(self, name: str, entry: Entry) -> None:
        self.writes[name] = entry
        self.pending[name] = entry

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
        states = declared("browser")
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
        found = request._statekit_browser = BrowserExchange(request, delivering=False)
    return found


def _ascii_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def _start(request: HttpRequest) -> BrowserExchange:
    watch_session(request)
    ex = request._statekit_browser = BrowserExchange(request, delivering=True)
    if COOKIE in request.COOKIES:
        _uncarry(request, ex)
    return ex


def _uncarry(request: HttpRequest, ex: BrowserExchange) -> None:
    ex.carried = True
    value = request.get_signed_cookie(COOKIE, default=None, salt=COOKIE_SALT)
    try:
        writes = json.loads(base64.urlsafe_b64decode(value or ""))
    except (ValueError, binascii.Error, RecursionError):
        writes = None
    if not isinstance(writes, dict):
        logger.warning("Browser state: the %s cookie is invalid; it is dropped.", COOKIE)
        return
    for name, entry in writes.items():
        if entry is None or isinstance(entry, dict):
            ex.queue(name, entry)


def _inject(response: HttpResponseBase, writes: dict[str, Entry]) -> bool:
    """Add the writes to an HTML page before ``</body>``; False if it cannot be done."""
    if (
        response.streaming
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


def _carry(request: HttpRequest, response: HttpResponseBase, writes: dict[str, Entry]) -> None:
    """Keep the writes in a signed cookie for the next response; drop what does not fit."""
    kept: dict[str, Entry] = {}
    value = ""
    for name, entry in writes.items():
        trial = base64.urlsafe_b64encode(_ascii_json({**kept, name: entry}).encode()).decode()
        if len(trial) > COOKIE_MAX_BYTES:
            logger.error(
                "Browser state: the write of %r cannot reach the browser: the response "
                "neither answers statekit.js nor renders {%% statekit_js %%}, and the write "
                "is too large for the cookie that carries writes to the next response.",
                name,
            )
            continue
        kept[name], value = entry, trial
    if kept:
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


def _finish(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    ex: BrowserExchange = request._statekit_browser
    if ex.read_header:
        patch_vary_headers(response, (HEADER, REF_HEADER) if ex.ref else (HEADER,))
    if ex.missing:
        response[MISSING_HEADER] = "1"
    if response.status_code >= 500:
        # Like sessions: a failed request writes nothing (carried writes stay in the cookie).
        return response
    writes, ex.pending = ex.pending, {}
    if writes and not 300 <= response.status_code < 400:
        if ex.from_js:
            response[SET_HEADER] = _ascii_json(writes)
            writes, ex.delivered = {}, True
        elif ex.page and _inject(response, writes):
            writes, ex.delivered = {}, True
    if writes or ex.carried:
        _carry(request, response, writes)
    if ex.delivered or writes:
        patch_cache_control(response, private=True)
    return response


class StatekitMiddleware:
    """statekit's per-request work, sync and async:

    - hooks the session so ``cycle_key`` (login) carries its state to the new key and
      ``flush`` (logout) ends it (see :mod:`statekit.sessions`);
    - delivers the browser-state writes of the request with its response.

    Put it below ``SessionMiddleware`` and below ``GZipMiddleware`` in MIDDLEWARE (it may add
    to HTML pages, which must not be compressed yet).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        _start(request)  # a bundle is loaded when the view reads browser state
        return _finish(request, self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        ex = _start(request)
        if ex.ref is not None:  # loaded before the view: an async view must not wait on I/O
            ex.take_bundle(await aload(ex.ref))
        return _finish(request, await self.get_response(request))

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view that met a backend which cannot be reached answers 503, not 500 (Django
        adapts this method to async views; django.request logs the 503)."""
        if not isinstance(exception, BackendUnavailable):
            return None
        response = HttpResponse(
            "Service unavailable: the state storage cannot be reached. Try again shortly.",
            content_type="text/plain; charset=utf-8",
            status=503,
        )
        response["Retry-After"] = "1"
        return response
