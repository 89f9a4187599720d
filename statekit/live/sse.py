"""Live state without Channels: Server-Sent Events from a plain async Django view.

``GET <statekit.urls>/events/?watch=global:visitors&watch=session:cart&watch=page:chat
&statekit_page=<page id>`` answers ``text/event-stream`` under any ASGI server (uvicorn,
hypercorn, daphne): first ``retry:``, then one event per watch with its current value, then
one event per change made by any process (:mod:`statekit.streams`)::

    id: 3
    event: global:visitors
    data: 42

The event's name is the watch as asked; ``data`` is the value as JSON, or, with
``format=html``, as HTML-escaped text for htmx's SSE extension (``sse-swap="global:visitors"``
swaps it in); :func:`events_view` takes a ``render`` of your own (a template fragment).

The access rules are the websocket's (:mod:`statekit.live.owner`): public globals, the
session state of the request's session, the page state of pages issued to that session. A
refused or malformed request is answered 403 or 400 (JSON ``{"code", "message"}``) before
anything is subscribed; EventSource does not retry those. At most ``WS_MAX_WATCHES`` watches,
a query of at most ``WS_MAX_MESSAGE_BYTES``. Each watch holds at most its latest value, so a
client that does not read keeps memory flat; a comment line every :data:`HEARTBEAT_SECONDS`
keeps proxies from closing the stream and finds clients that are gone. When the client goes
away, Django cancels the stream and every subscription is released. A reconnection
(``Last-Event-ID``) is sent the current values again, which resyncs it. The stream ends when
the session of a session or page watch ends or gets a new key (logout, login): the browser
reconnects with the session it has now.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.html import escape
from django.views.decorators.http import require_GET

from statekit.conf import get_settings
from statekit.keys import SCOPES, Scope
from statekit.live.owner import Refused, as_json, owner_for, unreadable, watched
from statekit.state import pages
from statekit.streams.changes import close_connections

logger = logging.getLogger("statekit.live")

#: Seconds between heartbeats (comment lines) on a quiet stream.
HEARTBEAT_SECONDS = 15.0
#: What EventSource waits before reconnecting, in milliseconds.
RETRY_MILLISECONDS = 2000

#: ``render(variable, value)``: the ``data`` of an event.
Render = Callable[[Any, Any], str]


def as_html(variable: Any, value: Any) -> str:
    """``?format=html``: a str as escaped text, nothing for None, anything else as JSON."""
    if value is None:
        return ""
    return str(escape(value if isinstance(value, str) else as_json(variable, value)))


#: The event of a watch that ended on its own (its value cannot be read or rendered): the
#: data is ``{"watch", "code", "message"}``, as a refusal's; the other watches go on.
ERROR_EVENT = "statekit:error"

#: What ends a line in an event stream: the data's other line breaks (U+2028...) are text.
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def event(number: int, name: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in LINE_BREAK.split(data))
    return f"id: {number}\nevent: {name}\n{lines}\n"


async def _watches(request: HttpRequest) -> list[tuple[str, Any, str | None]]:
    """``(event name, variable, owner)`` of each watch asked; Refused if one may not be."""
    conf = get_settings()
    if len(request.META.get("QUERY_STRING", "")) > conf["WS_MAX_MESSAGE_BYTES"]:
        raise Refused("limit", f"The query is limited to {conf['WS_MAX_MESSAGE_BYTES']} bytes.")
    asked = request.GET.getlist("watch")
    if not asked:
        raise Refused("invalid", "Name what to watch: ?watch=<scope>:<name>, one or more.")
    if len(asked) > conf["WS_MAX_WATCHES"]:
        raise Refused("limit", f"A stream may watch at most {conf['WS_MAX_WATCHES']} variables.")
    if len(set(asked)) != len(asked):
        raise Refused("duplicate", "Each variable may be watched once per stream.")
    session = getattr(request, "session", None)
    session_key = None
    if session is not None:
        await session.aitems()  # loads it: an unknown or expired key becomes None
        session_key = session.session_key
    found = []
    for name in asked:
        scope, _, var_name = name.partition(":")
        if scope not in SCOPES or not var_name:
            scopes = ", ".join(SCOPES)
            raise Refused("invalid", f"Watch <scope>:<name>, the scope one of: {scopes}.")
        try:
            variable = watched(scope, var_name)
            owner = await owner_for(scope, session, session_key, request.GET.get(pages.FIELD))
        except Refused as exc:
            exc.watch = name  # statekit.js fails that watch and streams the others
            raise
        found.append((name, variable, owner))
    return found


async def _stream(watches: list[tuple[str, Any, str | None]], render: Render) -> AsyncIterator[str]:
    latest: dict[str, str] = {}  # event name -> the data of its latest value, unsent
    ended: dict[str, str] = {}  # event name -> the ERROR_EVENT data of a watch that ended
    changed = asyncio.Event()
    over: list[str] = []  # the watches that end the stream (the client reconnects)

    def end(name: str, code: str, message: str) -> None:
        latest.pop(name, None)
        ended[name] = json.dumps({"watch": name, "code": code, "message": message})
        changed.set()

    async def pump(name: str, variable: Any, owner: str | None) -> None:
        values = variable.changes() if variable.scope == Scope.GLOBAL else variable.changes(owner)
        what = f"{variable.scope} state {variable.name!r}"
        try:
            async with aclosing(values) as found:
                async for value in found:
                    try:
                        data = render(variable, value)
                    except Exception:  # a bug of render(): this watch only, with its traceback
                        logger.exception("statekit event stream: render() failed on %s", what)
                        return end(name, "internal", f"{what} could not be rendered.")
                    latest.pop(name, None)  # the newest goes last
                    latest[name] = data
                    changed.set()
            over.append(name)  # its session ended or changed key: the browser reconnects
            changed.set()
        except Exception as exc:  # a schema mismatch ends this watch; a backend failure, the
            refused = unreadable(variable, exc)  # stream (the client reconnects)
            if refused.code == "schema":
                return end(name, refused.code, str(refused))
            over.append(name)
            changed.set()

    # The request's thread holds the connections the checks of the watches opened (the
    # session, page ids) until the response ends: one per open page. The stream's own reads
    # hold none (statekit.streams.changes).
    await sync_to_async(close_connections)()
    tasks = [asyncio.create_task(pump(*watch)) for watch in watches]
    number = 0
    try:
        yield f": statekit\nretry: {RETRY_MILLISECONDS}\n\n"
        while True:
            try:
                await asyncio.wait_for(changed.wait(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield ": ping\n\n"
                continue
            changed.clear()
            while latest or ended:
                number += 1
                if ended:
                    yield event(number, ERROR_EVENT, ended.pop(next(iter(ended))))
                else:
                    name = next(iter(latest))
                    yield event(number, name, latest.pop(name))
            if over:
                return
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def events_view(render: Render | None = None) -> Callable[[HttpRequest], Any]:
    """The event-stream view; ``render(variable, value)`` makes each event's data (default:
    JSON, or escaped text with ``?format=html``)."""

    @require_GET
    async def events(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
        try:
            watches = await _watches(request)
        except Refused as exc:
            status = 403 if exc.code == "refused" else 400
            answer = {"code": exc.code, "message": str(exc), "watch": exc.watch}
            return JsonResponse(answer, status=status)
        chosen = render or (as_html if request.GET.get("format") == "html" else as_json)
        response = StreamingHttpResponse(
            _stream(watches, chosen), content_type="text/event-stream; charset=utf-8"
        )
        response["Cache-Control"] = "no-cache, no-store"
        response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
        # GZipMiddleware skips a response that has a Content-Encoding; it would compress each
        # event as a gzip file of its own, which browsers' EventSource does not read.
        response["Content-Encoding"] = ""
        return response

    return events


events = events_view()
