"""``statekit/browser/``: where statekit.js uploads the browser state too large for a header;
``statekit/browser/writes/?ref=``: where it fetches the writes too large for a response header.

The body is a JSON object, state name to entry, as in the ``X-Statekit-Browser`` header. It is
bounded before it is read (by what the declared states may hold), and only entries the server
would accept are kept: those of declared states that verify (signature, decryption, size,
age). The answer is ``{"ref": <reference>}`` (``null`` when nothing was kept); see
:mod:`statekit.browser.refs`. Nothing here needs a session or a CSRF token: a reference
discloses nothing and its entries are verified again whenever a view reads them.

The writes are those of one response, kept under a random reference that only that response
named (:func:`statekit.browser.refs.keep_writes`): ``404`` once they are lost or expired.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from statekit.browser.refs import STORE_ERRORS, ascii_json, load_writes, store
from statekit.browser.state import BrowserState
from statekit.keys import BROWSER
from statekit.registry import declared

logger = logging.getLogger("statekit.browser")


def _refused(status: int, message: str) -> JsonResponse:
    logger.info("Browser state upload refused: %s", message)
    return JsonResponse({"error": message}, status=status)


def _body(request: HttpRequest, limit: int) -> Any:
    """The parsed body, or a JsonResponse (4xx) when it is too large or not an object."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if not 0 < length <= limit:
        return _refused(413, f"the body must be 1 to {limit} bytes, not {length}")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        return _refused(413, f"the body is over {limit} bytes")
    try:
        found = json.loads(raw)
    except (ValueError, RecursionError):
        return _refused(400, "the body is not JSON")
    if not isinstance(found, dict):
        return _refused(400, "the body is not a JSON object")
    return found


@csrf_exempt
def upload(request: HttpRequest) -> HttpResponse:
    """Keep the entries that verify as one bundle; answer its reference."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    states = {state.name: state for state in declared(BROWSER)}
    body = _body(request, sum(state.wire_limit for state in states.values()))
    if isinstance(body, HttpResponse):
        return body
    kept: dict[str, Any] = {}
    for name, entry in body.items():
        state = states.get(name)
        if isinstance(state, BrowserState) and state.verify(request, entry) is not None:
            kept[name] = entry
    if not kept:
        return JsonResponse({"ref": None})
    try:
        ref = store(kept)
    except STORE_ERRORS as exc:
        logger.warning("Browser state upload: the store is unavailable (%s).", exc)
        return JsonResponse({"error": "the store is unavailable"}, status=503)
    return JsonResponse({"ref": ref})


def writes(request: HttpRequest) -> HttpResponse:
    """The writes of a response kept by reference (``?ref=``), for statekit.js to apply."""
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    found = load_writes(request.GET.get("ref", ""))  # logged when lost
    if found is None:
        response: HttpResponse = JsonResponse({"error": "these writes are lost"}, status=404)
    else:
        response = HttpResponse(ascii_json(found), content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response
