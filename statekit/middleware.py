"""statekit's middleware: the session hooks (:mod:`statekit.lifecycle.sessions`) and the
browser-state transport (:mod:`statekit.browser.transport`), for each request, sync and async.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from statekit.browser.delivery import COOKIE, SET_HEADER, WRITES_ID, carried, deliver, route
from statekit.browser.refs import (
    HEADER,
    akeep_writes,
    aload,
    aload_writes,
    keep_writes,
    load_writes,
)
from statekit.browser.transport import BrowserExchange, exchange
from statekit.exceptions import BackendUnavailable
from statekit.lifecycle.sessions import watch as watch_session

__all__ = ["COOKIE", "HEADER", "SET_HEADER", "WRITES_ID", "StatekitMiddleware", "exchange"]


def _start(request: HttpRequest) -> BrowserExchange:
    watch_session(request)
    ex = request.__dict__["_statekit_browser"] = BrowserExchange(request, delivering=True)
    if COOKIE in request.COOKIES:
        ex.carried = True
        found = carried(request)
        if found is not None:
            ex.queue_carried(found[0])
            ex.carried_ref = found[1]
    return ex


class StatekitMiddleware:
    """statekit's per-request work, sync and async:

    - hooks the session so ``cycle_key`` (login) carries its state to the new key and
      ``flush`` (logout) ends it (see :mod:`statekit.lifecycle.sessions`);
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
        ex = _start(request)  # a bundle is loaded when the view reads browser state
        if ex.carried_ref is not None:
            ex.queue_carried(load_writes(ex.carried_ref))
        response = self.get_response(request)
        where, inline, left = route(ex, response)
        return deliver(ex, response, where, inline, keep_writes(left) if left else None)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        # Loaded before the view: an async view must not wait on I/O.
        ex = _start(request)
        if ex.ref is not None:
            ex.take_bundle(await aload(ex.ref))
        if ex.carried_ref is not None:
            ex.queue_carried(await aload_writes(ex.carried_ref))
        response = await self.get_response(request)
        where, inline, left = route(ex, response)
        return deliver(ex, response, where, inline, await akeep_writes(left) if left else None)

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
