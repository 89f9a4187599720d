"""BrowserState on the server: declaration, reading what the page sent, signing, encryption,
limits, delivery of writes by the middleware, the template tags and the checks.

Requests go through the real StatekitMiddleware around small views, as Django runs them;
statekit.js itself is tested in real Chromium (test_browser_js.py).
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import time
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template import Context, RequestContext, Template, TemplateSyntaxError
from django.test import RequestFactory, override_settings

from statekit import BrowserState, StateTypeError, ValueTooLarge
from statekit.browser import sealing
from statekit.browser.transport import FIELD
from statekit.checks import check_browser_settings
from statekit.middleware import (
    COOKIE,
    HEADER,
    SET_HEADER,
    WRITES_ID,
    StatekitMiddleware,
)
from statekit.registry import declared
from statekit.signals import browser_state_rejected

rf = RequestFactory()


# -- helpers: real requests through the real middleware --------------------------------------


def from_js(entries: dict[str, Any] | str | None = None, **extra: Any):
    """A request as statekit.js sends it: the entries in the header (JSON)."""
    raw = entries if isinstance(entries, str) else json.dumps(entries or {})
    return rf.get("/", headers={HEADER: raw}, **extra)


def through(request, view) -> HttpResponse:
    return StatekitMiddleware(view)(request)


def written(response: HttpResponse) -> dict[str, Any]:
    """The writes delivered to statekit.js in the response header."""
    return json.loads(response[SET_HEADER])


def entry_for(state: BrowserState, value: Any) -> dict[str, Any]:
    """The entry the server writes for ``value`` (as the browser then keeps it)."""
    response = through(from_js(), lambda request: (state.set(request, value), HttpResponse())[1])
    return written(response)[state.name]


def read(state: BrowserState, request) -> Any:
    """What ``state.get(request)`` returns inside a view."""
    seen = []
    through(request, lambda r: (seen.append(state.get(r)), HttpResponse())[1])
    return seen[0]


@pytest.fixture
def rejections():
    """The browser_state_rejected signals sent during the test."""
    sent: list[dict[str, Any]] = []

    def receiver(sender, **kwargs):
        sent.append({"sender": sender, **kwargs})

    browser_state_rejected.connect(receiver)
    yield sent
    browser_state_rejected.disconnect(receiver)


# -- declaration ---------------------------------------------------------------------------


def test_declaration(name):
    prefs = BrowserState(name, default={"theme": "light"}, signed=True, max_age=60)
    assert prefs.scope == "browser"
    assert prefs.declared_in == __name__
    assert (
        repr(prefs)
        == f"BrowserState({name!r}, default={{'theme': 'light'}}, signed=True, max_age=60)"
    )
    assert prefs.max_bytes == 4096
    with override_settings(STATEKIT={"BROWSER_MAX_BYTES": 100}):
        assert prefs.max_bytes == 100
    assert BrowserState(name + "x", max_bytes=10).max_bytes == 10
    # The same definition twice is one state; a different one is an error naming both places.
    BrowserState(name, default={"theme": "light"}, signed=True, max_age=60)
    with pytest.raises(ImproperlyConfigured, match=rf"declared twice.*{__name__}"):
        BrowserState(name, default={"theme": "light"}, encrypted=True, max_age=60)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"signed": True, "encrypted": True}, "not both"),
        ({"max_age": 0}, "max_age .* positive"),
        ({"max_age": "1h"}, "max_age .* positive"),
        ({"max_bytes": 0}, "max_bytes .* positive integer"),
        ({"max_bytes": True}, "max_bytes .* positive integer"),
    ],
)
def test_invalid_declarations(name, options, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        BrowserState(name, **options)


def test_on_change_points_to_the_page(name):
    with pytest.raises(ImproperlyConfigured, match=r"statekit\.browser\.subscribe"):
        BrowserState(name).on_change(print)


def test_max_age_accepts_timedelta(name):
    assert BrowserState(name, max_age=datetime.timedelta(hours=1)).max_age == 3600.0


# -- reading what the page sent ------------------------------------------------------------


def test_nothing_sent_reads_a_fresh_default(name):
    cart = BrowserState(name, default=["a"])
    request = rf.get("/")
    first = read(cart, request)
    assert first == ["a"]
    first.append("b")
    assert read(cart, rf.get("/")) == ["a"]
    factory = BrowserState(name + "f", default=dict)
    assert read(factory, rf.get("/")) == {}


@pytest.mark.parametrize(
    "value", [0, "", False, None, [], {}, 0.0, "<b>&</b>", {"nested": [1, {"a": None}]}]
)
def test_values_sent_by_the_page_read_back_exactly(name, value):
    state = BrowserState(name, default="default")
    got = read(state, from_js({name: {"v": value, "t": 1}}))
    assert got == value
    assert type(got) is type(value)


def test_tagged_types_round_trip(name):
    state = BrowserState(name)
    value = {
        "when": datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC),
        "price": Decimal("9.99"),
    }
    assert read(state, from_js({name: entry_for(state, value)})) == value


def test_values_come_from_a_post_form_field(name):
    state = BrowserState(name, default="light")
    entries = json.dumps({name: {"v": "dark", "t": 1}})
    assert read(state, rf.post("/", {FIELD: entries, "other": "x"})) == "dark"
    multipart = rf.post("/", {FIELD: entries}, format="multipart")
    assert read(state, multipart) == "dark"
    # The header wins over the field; a GET query string is never read.
    header = json.dumps({name: {"v": "blue", "t": 1}})
    assert read(state, rf.post("/", {FIELD: entries}, headers={HEADER: header})) == "blue"
    assert read(state, rf.get("/", {FIELD: entries})) == "light"


def test_a_request_reads_its_own_writes(name):
    state = BrowserState(name, default="default")

    def view(request):
        seen = [state.get(request)]
        state.set(request, "new")
        seen.append(state.get(request))
        state.delete(request)
        seen.append(state.get(request))
        return JsonResponse(seen, safe=False)

    response = through(from_js({name: {"v": "old", "t": 1}}), view)
    assert json.loads(response.content) == ["old", "new", "default"]
    assert written(response) == {name: None}


def test_async_views(name):
    state = BrowserState(name, default=0)

    async def view(request):
        value = await state.aget(request)
        await state.aset(request, value + 1)
        return HttpResponse()

    middleware = StatekitMiddleware(view)
    response = async_to_sync(middleware)(from_js({name: {"v": 41, "t": 1}}))
    assert written(response)[name]["v"] == 42


def test_set_needs_the_middleware(name):
    state = BrowserState(name)
    request = rf.get("/")
    assert state.get(request) is None  # Reading works without it.
    with pytest.raises(ImproperlyConfigured, match="StatekitMiddleware"):
        state.set(request, 1)


def test_owner_must_be_a_request(name):
    with pytest.raises(StateTypeError, match="HttpRequest"):
        BrowserState(name).get("session-key")


# -- limits and malformed input ------------------------------------------------------------


def test_set_refuses_what_it_cannot_store(name):
    state = BrowserState(name, max_bytes=16)

    def view(request):
        with pytest.raises(ValueTooLarge, match=f"{name}.* 19 bytes .* limit of 16"):
            state.set(request, "x" * 17)
        with pytest.raises(StateTypeError, match=rf"{name}\.s is a builtins.set"):
            state.set(request, {"s": {1}})
        return HttpResponse()

    response = through(from_js(), view)
    assert SET_HEADER not in response


@pytest.mark.parametrize(
    ("raw", "log"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "not an object"),
        # Too deep for json before Python 3.13 (RecursionError), a list from 3.13 on.
        ("[" * 5000 + "]" * 5000, "; using the defaults."),
    ],
)
def test_a_malformed_header_reads_defaults(name, caplog, raw, log):
    state = BrowserState(name, default="default")
    with caplog.at_level(logging.WARNING, "statekit.browser"):
        assert read(state, from_js(raw)) == "default"
    assert log in caplog.text


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("dark", "malformed"),
        ({"t": 1}, "malformed"),
        ({"v": {"__sk__": "nope", "v": 1}, "t": 1}, "malformed"),
        ({"v": {"__sk__": "datetime", "v": "not a date"}, "t": 1}, "malformed"),
        ({"v": "\ud800", "t": 1}, "malformed"),
        ({"v": "x" * 100, "t": 1}, "too_large"),
    ],
)
def test_a_malformed_or_oversized_value_reads_the_default(name, caplog, rejections, entry, reason):
    state = BrowserState(name, default="default", max_bytes=64)
    with caplog.at_level(logging.WARNING, "statekit.browser"):
        assert read(state, from_js({name: entry})) == "default"
    assert f"BrowserState {name!r}: the value from the browser is refused ({reason})" in caplog.text
    assert [(r["sender"], r["reason"]) for r in rejections] == [(state, reason)]


def test_an_oversized_header_is_refused_before_parsing(name, caplog):
    state = BrowserState(name, default="default", max_bytes=10)
    limit = sum(s.wire_limit for s in declared("browser"))
    with caplog.at_level(logging.WARNING, "statekit.browser"):
        assert read(state, from_js({name: {"v": "x" * limit, "t": 1}})) == "default"
    assert "characters, over the" in caplog.text


# -- signed --------------------------------------------------------------------------------


def test_signed_round_trip(name):
    badge = BrowserState(name, default="none", signed=True)
    entry = entry_for(badge, {"level": "gold"})
    assert set(entry) == {"s", "t"}
    assert entry["s"].startswith('{"level":"gold"}:')  # Readable by the page, not writable.
    assert read(badge, from_js({name: entry})) == {"level": "gold"}


def tampered(token: str) -> str:
    return token.replace("gold", "root", 1)


def test_a_signed_value_edited_in_the_browser_is_refused(name, caplog, rejections):
    badge = BrowserState(name, default="none", signed=True)
    entry = entry_for(badge, "gold")
    forged = [
        {**entry, "s": tampered(entry["s"])},
        {"v": "root", "t": entry["t"]},  # A plain value where a signed one belongs.
        {"s": signing.TimestampSigner(salt="other").sign('"root"'), "t": 1},
    ]
    with caplog.at_level(logging.WARNING, "statekit.browser"):
        for entry in forged:
            assert read(badge, from_js({name: entry})) == "none"
    assert [r["reason"] for r in rejections] == ["tampered"] * 3
    assert rejections[0]["request"].headers[HEADER]
    assert "signature does not match" in caplog.text


def test_a_signed_value_is_refused_for_another_state(name, rejections):
    gold, other = BrowserState(name, signed=True), BrowserState(name + "2", signed=True)
    assert read(other, from_js({other.name: entry_for(gold, "gold")})) is None
    assert [r["reason"] for r in rejections] == ["tampered"]


def test_signing_honours_secret_key_fallbacks(name, rejections):
    badge = BrowserState(name, signed=True)
    with override_settings(SECRET_KEY="old-key"):
        entry = entry_for(badge, "gold")
    with override_settings(SECRET_KEY="new-key", SECRET_KEY_FALLBACKS=["old-key"]):
        assert read(badge, from_js({name: entry})) == "gold"
    with override_settings(SECRET_KEY="new-key"):
        assert read(badge, from_js({name: entry})) is None
    assert [r["reason"] for r in rejections] == ["tampered"]


def test_an_old_signed_value_reads_the_default(name, rejections):
    badge = BrowserState(name, default="none", signed=True, max_age=60)
    # Signed by the server 61 seconds ago, with the state's own salt:
    old = signing.b62_encode(int(time.time()) - 61)
    token = signing.Signer(salt=f"statekit.browser.{name}").sign(f'"gold":{old}')
    assert read(badge, from_js({name: {"s": token, "t": 1}})) == "none"
    fresh = signing.b62_encode(int(time.time()) - 50)
    token = signing.Signer(salt=f"statekit.browser.{name}").sign(f'"gold":{fresh}')
    assert read(badge, from_js({name: {"s": token, "t": 1}})) == "gold"
    assert rejections == []  # Expiry is not tampering.


# -- encrypted -----------------------------------------------------------------------------


def test_encrypted_round_trip_shows_the_browser_only_ciphertext(name):
    secret = BrowserState(name, encrypted=True)
    value = {"api_key": "sk-live-123456", "n": 42}
    entry = entry_for(secret, value)
    assert set(entry) == {"e", "t"}
    token = entry["e"]
    assert "sk-live" not in token and "api_key" not in token
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b"sk-live" not in raw
    assert entry_for(secret, value)["e"] != token  # A fresh nonce each time.
    assert read(secret, from_js({name: entry})) == value


def flip(token: str, at: int) -> str:
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


def test_an_encrypted_value_edited_in_the_browser_is_refused(name, caplog, rejections):
    secret = BrowserState(name, default="none", encrypted=True)
    other = BrowserState(name + "2", encrypted=True)
    token = entry_for(secret, "s3cret")["e"]
    forged = [
        flip(token, 20),
        flip(token, len(token) - 3),
        token[:-4],
        "!!not base64!!",
        "AAAA",
        entry_for(other, "s3cret")["e"],  # Made for another state.
    ]
    with caplog.at_level(logging.WARNING, "statekit.browser"):
        for bad in forged:
            assert read(secret, from_js({name: {"e": bad, "t": 1}})) == "none"
        assert read(secret, from_js({name: {"v": "s3cret", "t": 1}})) == "none"
    assert [r["reason"] for r in rejections] == ["tampered"] * 7
    assert "does not decrypt" in caplog.text


def test_encryption_honours_secret_key_fallbacks(name):
    secret = BrowserState(name, encrypted=True)
    with override_settings(SECRET_KEY="old-key"):
        entry = entry_for(secret, "s3cret")
    with override_settings(SECRET_KEY="new-key", SECRET_KEY_FALLBACKS=["old-key"]):
        assert read(secret, from_js({name: entry})) == "s3cret"
        # New writes use the new key only.
        fresh = entry_for(secret, "s3cret")
    with override_settings(SECRET_KEY="new-key"):
        assert read(secret, from_js({name: entry})) is None
        assert read(secret, from_js({name: fresh})) == "s3cret"


def test_an_old_encrypted_value_reads_the_default(name, rejections):
    secret = BrowserState(name, default="none", encrypted=True, max_age=60)
    old = sealing.encrypt(name, '"s3cret"', sealing.now_ms() - 61_000)
    assert read(secret, from_js({name: {"e": old, "t": 1}})) == "none"
    recent = sealing.encrypt(name, '"s3cret"', sealing.now_ms() - 50_000)
    assert read(secret, from_js({name: {"e": recent, "t": 1}})) == "s3cret"
    assert rejections == []


def test_an_oversized_token_is_refused_before_decryption(name, rejections):
    secret = BrowserState(name, encrypted=True, max_bytes=32)
    token = entry_for(BrowserState(name + "big", encrypted=True), "x" * 100)["e"]
    assert read(secret, from_js({name: {"e": token, "t": 1}})) is None
    assert [r["reason"] for r in rejections] == ["too_large"]


# -- delivery of writes --------------------------------------------------------------------


def setter(state: BrowserState, value: Any, response=HttpResponse):
    def view(request):
        state.set(request, value)
        return response()

    return view


def test_writes_reach_statekit_js_in_a_header(name):
    state = BrowserState(name)

    def view(request):
        state.set(request, state.get(request) + 1)
        return HttpResponse()

    response = through(from_js({name: {"v": 1, "t": 1}}), view)
    (entry,) = written(response).values()
    assert entry["v"] == 2
    assert abs(entry["t"] - time.time() * 1000) < 5000
    assert response["Vary"] == HEADER
    assert "private" in response["Cache-Control"]
    assert COOKIE not in response.cookies


def test_a_response_that_writes_nothing_is_left_alone(name):
    response = through(rf.get("/"), lambda request: HttpResponse("x"))
    assert SET_HEADER not in response and "Vary" not in response
    assert "Cache-Control" not in response and not response.cookies


def test_writes_cross_a_redirect_in_a_cookie(name):
    state = BrowserState(name)
    # A plain form post, answered by a redirect: nothing can apply the writes yet.
    response = through(rf.post("/"), setter(state, "dark", lambda: redirect("/next/")))
    assert SET_HEADER not in response
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    # The next request reads them back, and the page delivers them.
    follow = rf.get("/next/")
    follow.COOKIES[COOKIE] = cookie.value

    def page(request):
        assert state.get(request) == "dark"
        return HttpResponse(
            Template("{% load statekit %}{% statekit_js %}").render(RequestContext(request))
        )

    delivered = through(follow, page)
    config = json.loads(delivered.content.split(b">", 1)[1].split(b"</script>", 1)[0])
    assert config["browser"]["writes"][name]["v"] == "dark"
    assert delivered.cookies[COOKIE]["max-age"] == 0  # Deleted: delivered.


def test_a_failed_request_writes_nothing(name):
    state = BrowserState(name)
    response = through(from_js(), setter(state, 1, lambda: HttpResponse(status=500)))
    assert SET_HEADER not in response and not response.cookies
    # Writes carried from an earlier request stay in their cookie for the next one.
    carried = through(rf.post("/"), setter(state, 2, lambda: redirect("/")))
    request = from_js()
    request.COOKIES[COOKIE] = carried.cookies[COOKIE].value
    response = through(request, lambda r: HttpResponse(status=503))
    assert SET_HEADER not in response and not response.cookies


def test_a_forged_carry_cookie_is_dropped(name, caplog):
    state = BrowserState(name, default="default")
    request = rf.get("/", headers={HEADER: "{}"})
    request.COOKIES[COOKIE] = "forged"
    with caplog.at_level(logging.WARNING, "statekit.browser"):
        assert read(state, request) == "default"
    assert "cookie is invalid" in caplog.text


PAGE = Template("{% load statekit %}<html><head>{% statekit_js %}</head><body>page</body></html>")


def test_a_page_carries_writes_made_before_and_after_it_rendered(name):
    state = BrowserState(name)

    def view(request):
        state.set(request, "before")
        html = PAGE.render(RequestContext(request))
        state.set(request, "after")  # Too late for the tag: the middleware adds it.
        return HttpResponse(html)

    response = through(rf.post("/"), view)
    html = response.content.decode()
    assert '"before"' in html.split("<script src")[0]
    tail = html.split(f'<script id="{WRITES_ID}" type="application/json">')[1]
    assert json.loads(tail.split("</script>")[0])[name]["v"] == "after"
    assert html.endswith("</script></body></html>")
    assert "private" in response["Cache-Control"]
    assert COOKIE not in response.cookies


def test_a_page_fetched_by_statekit_js_gets_the_writes_in_the_header(name):
    state = BrowserState(name)

    def view(request):
        state.set(request, 1)
        return HttpResponse(PAGE.render(RequestContext(request)))

    response = through(from_js(), view)
    assert written(response)[name]["v"] == 1
    assert f'id="{WRITES_ID}"' not in response.content.decode()


def test_a_response_that_cannot_deliver_carries_the_writes(name):
    state = BrowserState(name)
    response = through(rf.post("/"), setter(state, 1, lambda: JsonResponse({})))
    assert COOKIE in response.cookies
    assert "private" in response["Cache-Control"]


# -- template tags -------------------------------------------------------------------------


def test_statekit_js_emits_config_and_script_once_with_a_csp_nonce(name):
    BrowserState(name, default="</script><script>alert(1)</script>", max_age=5)
    BrowserState(name + "enc", default="the-hidden-default", encrypted=True)
    request = rf.get("/")
    request.csp_nonce = "n0nce"
    html = Template("{% load statekit %}{% statekit_js %}{% statekit_js %}").render(
        RequestContext(request)
    )
    config_tag, script, rest = html.split("</script>")
    assert config_tag.startswith('<script id="statekit-config" type="application/json">')
    assert script == '<script src="/static/statekit/statekit.js" nonce="n0nce">'
    assert rest == ""  # Once per page.
    assert "<script>alert" not in config_tag and "\\u003C/script\\u003E" in config_tag
    config = json.loads(config_tag.split(">", 1)[1])["browser"]
    assert config["prefix"] == "statekit:"
    assert (config["header"], config["setHeader"], config["field"]) == (HEADER, SET_HEADER, FIELD)
    assert config["states"][name] == {
        "signed": False,
        "encrypted": False,
        "maxAge": 5.0,
        "maxBytes": 4096,
        "default": "</script><script>alert(1)</script>",
    }
    assert "default" not in config["states"][name + "enc"]
    assert "the-hidden-default" not in html


def test_statekit_js_without_a_request_or_nonce():
    html = Template("{% load statekit %}{% statekit_js %}").render(Context())
    assert '<script src="/static/statekit/statekit.js"></script>' in html


def test_statekit_value_renders_text_never_html(name):
    BrowserState(name, default={"user": "<img src=x onerror=alert(1)>", "n": [1, 2]})
    template = Template(
        '{% load statekit %}{% statekit_value name %}|{% statekit_value name key="user" %}|'
        '{% statekit_value name key="n" %}|{% statekit_value name key="missing" %}'
    )
    html = template.render(RequestContext(rf.get("/"), {"name": name}))
    whole, user, n, missing = html.split("|")
    assert "<img" not in html
    assert user == (
        f'<span data-statekit-value="{name}" data-statekit-key="user">'
        "&lt;img src=x onerror=alert(1)&gt;</span>"
    )
    assert n == f'<span data-statekit-value="{name}" data-statekit-key="n">[1,2]</span>'
    assert missing.endswith("></span>")
    assert whole.startswith(f'<span data-statekit-value="{name}">{{&quot;user&quot;')
    # What the page sent is shown, picked by list index too.
    state2 = BrowserState(name + "l", default=[])
    request = from_js({state2.name: {"v": ["a", "b"], "t": 1}})
    html = Template("{% load statekit %}{% statekit_value name key=1 %}").render(
        RequestContext(request, {"name": state2.name})
    )
    assert html == f'<span data-statekit-value="{state2.name}" data-statekit-key="1">b</span>'


def test_statekit_value_refuses_encrypted_and_unknown_states(name):
    BrowserState(name, encrypted=True)
    with pytest.raises(TemplateSyntaxError, match="encrypted"):
        Template("{% load statekit %}{% statekit_value name %}").render(Context({"name": name}))
    with pytest.raises(ImproperlyConfigured, match="No BrowserState named 'nope'"):
        Template('{% load statekit %}{% statekit_value "nope" %}').render(Context())


# -- checks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conf", "ids"),
    [
        ({}, []),
        ({"BROWSER_PREFIX": "myproject:", "BROWSER_MAX_BYTES": 100}, []),
        ({"BROWSER_PREFIX": ""}, ["statekit.E020"]),
        ({"BROWSER_PREFIX": 3}, ["statekit.E020"]),
        ({"BROWSER_MAX_BYTES": 0}, ["statekit.E021"]),
        ({"BROWSER_MAX_BYTES": "4k"}, ["statekit.E021"]),
    ],
)
def test_browser_settings_checks(conf, ids):
    with override_settings(STATEKIT=conf):
        assert [m.id for m in check_browser_settings()] == ids
