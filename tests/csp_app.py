"""A page of the CSP tests (tests/test_csp.py): browser state and live state under a strict
Content-Security-Policy, served by a daphne process on tests/csp_settings.py."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import engines
from django.urls import path

from statekit import BrowserState, GlobalState

clicks = GlobalState("csp.clicks", default=0, public=True)
note = BrowserState("csp.note", default="")

PAGE = """{% load statekit %}<!doctype html>
<html><head><title>csp</title>{% statekit_js %}
<link rel="stylesheet" href="{% url 'csp-style' %}"{% statekit_nonce %}></head>
<body><p id="note">{% statekit_value "csp.note" %}</p></body></html>"""


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(engines["django"].from_string(PAGE).render({}, request))


def click(request: HttpRequest) -> JsonResponse:
    """What the page sent of ``csp.note``; writes another note and counts a click."""
    sent = note.get(request)
    note.set(request, f"seen {sent}")
    return JsonResponse({"sent": sent, "clicks": clicks.incr()})


def style(request: HttpRequest) -> HttpResponse:
    return HttpResponse("p { color: teal; }", content_type="text/css")


urlpatterns = [
    path("", page),
    path("click/", click),
    path("style.css", style, name="csp-style"),
    path("favicon.ico", lambda request: HttpResponse(status=204)),
]
