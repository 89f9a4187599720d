"""What statekit adds to a response stays small whatever is written (statekit/browser_delivery.py):
the writes that do not fit in the header budget are kept by reference (statekit/browser_refs.py)
and fetched from statekit/browser/writes/, or loaded by the request after a redirect. On every
backend (real servers), through the sync and the async middleware."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template import RequestContext, Template
from django.test import Client, RequestFactory
from django.urls import include, path

from statekit.browser.delivery import COOKIE, COOKIE_SALT, SET_HEADER
from statekit.browser.refs import SET_REF_HEADER, WRITES_TTL, _writes_key, keep_writes
from statekit.cleanup import cleanup
from statekit.middleware import HEADER, StatekitMiddleware
from tests.browser_app.state import badge, creds, note, secret, theme

pytestmark = pytest.mark.urls(__name__)
urlpatterns = [path("statekit/", include("statekit.urls"))]

BUDGET = 2048  # bytes of the header lines statekit adds to a response
rf = RequestFactory()
BIG = "€" * 1364  # 4094 bytes of JSON


def write_big(request: Any) -> None:
    badge.set(request, BIG)
    secret.set(request, "漢" * 1364)
    note.set(request, BIG)
    creds.set(request, {"username": "é" * 1000, "password": "x" * 2000})
    theme.set(request, "dark")


def through(request: Any, view: Any, *, is_async: bool) -> HttpResponse:
    if not is_async:
        return StatekitMiddleware(view)(request)

    async def aview(request: Any) -> HttpResponse:
        return view(request)

    return async_to_sync(StatekitMiddleware(aview))(request)


def added(response: HttpResponse) -> int:
    """Bytes of the header lines statekit added: ``Name: value\\r\\n``."""
    lines = [(k, v) for k, v in response.items() if k.lower().startswith("x-statekit-")]
    lines += [("Set-Cookie", c.OutputString()) for c in response.cookies.values()]
    return sum(len(k) + len(v) + 4 for k, v in lines)


def fetched(ref: str) -> tuple[int, Any]:
    response = Client().get("/statekit/browser/writes/", {"ref": ref})
    assert response["Cache-Control"] == "no-store"
    return response.status_code, json.loads(response.content)


def sent(response: HttpResponse) -> dict[str, Any]:
    """Every write the response delivers to statekit.js: in its header and by reference."""
    writes = json.loads(response.get(SET_HEADER, "{}"))
    if SET_REF_HEADER in response:
        status, kept = fetched(response[SET_REF_HEADER])
        assert status == 200
        assert not set(kept) & set(writes)
        writes.update(kept)
    return writes


def values(writes: dict[str, Any]) -> dict[str, Any]:
    """The values the browser would read back, as the server reads them."""
    found = {}
    for state in (badge, secret, note, creds, theme):
        request = rf.get("/", headers={HEADER: json.dumps({state.name: writes[state.name]})})
        found[state.name] = state.get(request)
    return found


EXPECTED = {
    badge.name: BIG,
    secret.name: "漢" * 1364,
    note.name: BIG,
    creds.name: {"username": "é" * 1000, "password": "x" * 2000},
    theme.name: "dark",
}


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_large_writes_to_statekit_js_go_by_reference(backend, is_async):
    def view(request: Any) -> HttpResponse:
        write_big(request)
        return HttpResponse()

    response = through(rf.get("/", headers={HEADER: "{}"}), view, is_async=is_async)
    print(f"statekit added {added(response)} bytes of response headers for 16 KB of writes")
    assert added(response) <= BUDGET
    assert theme.name in json.loads(response[SET_HEADER])  # the small ones stay inline
    assert values(sent(response)) == EXPECTED
    assert "private" in response["Cache-Control"]


def test_small_writes_stay_in_the_header_and_store_nothing(backend):
    def view(request: Any) -> HttpResponse:
        theme.set(request, "dark")
        note.delete(request)
        return HttpResponse()

    response = through(rf.get("/", headers={HEADER: "{}"}), view, is_async=False)
    assert SET_REF_HEADER not in response
    assert json.loads(response[SET_HEADER]) == {
        note.name: None,
        theme.name: sent(response)[theme.name],
    }
    assert list(backend.scan(expired=None)) == []


PAGE = Template("{% load statekit %}<html><head>{% statekit_js %}</head><body></body></html>")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_large_writes_cross_a_redirect_by_reference(backend, is_async):
    def view(request: Any) -> HttpResponse:
        write_big(request)
        return redirect("/next/")

    response = through(rf.post("/"), view, is_async=is_async)
    assert added(response) <= BUDGET and SET_HEADER not in response
    follow = rf.get("/next/")
    follow.COOKIES[COOKIE] = response.cookies[COOKIE].value
    seen = {}

    def page(request: Any) -> HttpResponse:
        seen.update(
            {state.name: state.get(request) for state in (badge, secret, note, creds, theme)}
        )
        return HttpResponse(PAGE.render(RequestContext(request)))

    delivered = through(follow, page, is_async=is_async)
    assert seen == EXPECTED  # the next request reads them, and its page delivers them
    config = json.loads(delivered.content.split(b'json">', 1)[1].split(b"</script>", 1)[0])
    assert values(config["browser"]["writes"]) == EXPECTED
    assert delivered.cookies[COOKIE]["max-age"] == 0


def test_lost_writes_log_a_warning_and_break_nothing(backend, caplog):
    ref = keep_writes({theme.name: {"v": "dark", "t": 1}})
    assert ref is not None and fetched(ref) == (200, {theme.name: {"v": "dark", "t": 1}})
    assert backend.discard(_writes_key(ref))
    with caplog.at_level(logging.WARNING, "statekit.browser"):
        assert fetched(ref)[0] == 404
        assert fetched("../not-a-ref")[0] == 404
    assert caplog.text.count("are lost") == 2
    assert Client().post("/statekit/browser/writes/").status_code == 405
    # A carry cookie naming lost writes: the next page renders, without them.
    carried = base64.urlsafe_b64encode(json.dumps([{}, ref]).encode()).decode()
    follow = rf.get("/next/")
    follow.COOKIES[COOKIE] = _signed(carried)
    response = through(follow, lambda r: HttpResponse(theme.get(r)), is_async=False)
    assert response.status_code == 200 and response.content == b"light"


def _signed(value: str) -> str:
    response = HttpResponse()
    response.set_signed_cookie(COOKIE, value, salt=COOKIE_SALT)
    return response.cookies[COOKIE].value


@pytest.mark.urls("tests.browser_app.urls")  # a URLconf without statekit.urls
def test_without_statekit_urls_writes_over_the_budget_are_dropped_with_a_warning(backend, caplog):
    def view(request: Any) -> HttpResponse:
        write_big(request)
        return HttpResponse()

    with caplog.at_level(logging.WARNING, "statekit.browser"):
        response = through(rf.get("/", headers={HEADER: "{}"}), view, is_async=False)
    assert added(response) <= BUDGET and SET_REF_HEADER not in response
    assert "statekit.urls is not included" in caplog.text


def test_kept_writes_are_internal_not_listed_and_cleaned_up(backend):
    ref = keep_writes({theme.name: {"v": "dark", "t": 1}})
    key = _writes_key(ref or "")
    assert key is not None and backend.get(key) is not None
    assert list(backend.scan(expired=None)) == []  # what the admin and the command list
    backend.expire(key, 0)
    report = cleanup()
    assert report.undeclared == 0 and backend.entry(key) is None
    assert WRITES_TTL <= 3600


def test_carried_writes_delivered_in_the_header_spend_the_cookie(backend):
    response = through(rf.post("/"), lambda r: (write_big(r), redirect("/"))[1], is_async=False)
    follow = rf.get("/", headers={HEADER: "{}"})  # fetch() follows the redirect
    follow.COOKIES[COOKIE] = response.cookies[COOKIE].value
    delivered = through(follow, lambda r: HttpResponse(), is_async=False)
    assert values(sent(delivered)) == EXPECTED
    assert delivered.cookies[COOKIE]["max-age"] == 0
