"""The site of tests/test_browser_budget.py, served by Daphne with a strict header limit
(``tests.budget_settings``): many browser states at their ``max_bytes``, and views that read
them and say how many header bytes statekit added to the request."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import engines
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from statekit import BrowserState

BIG = [BrowserState(f"budget.big{i}", default="") for i in range(6)]  # 4096 bytes each
SIGNED = BrowserState("budget.signed", default="", signed=True)
SECRET = BrowserState("budget.secret", default="", encrypted=True)
SMALL = [BrowserState(f"budget.small{i}", default="none") for i in range(3)]
FALSY = BrowserState("budget.falsy", default="fallback")
STATES = {s.name: s for s in (*BIG, SIGNED, SECRET, *SMALL, FALSY)}

PAGE = """{% load statekit %}<!doctype html><html><head><link rel="icon" href="data:,">
{% statekit_js %}</head><body>
<form id="form" method="post" action="/budget/echo/"><button id="submit">send</button></form>
</body></html>"""


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(engines["django"].from_string(PAGE).render({}, request))


@csrf_exempt
def echo(request: HttpRequest) -> JsonResponse:
    """The values this request carries, and the bytes of its X-Statekit-* header lines."""
    added = sum(
        len(name) + len(value) + 4  # "Name: value\r\n"
        for name, value in request.headers.items()
        if name.lower().startswith("x-statekit-")
    )
    values = {name: state.get(request) for name, state in STATES.items()}
    return JsonResponse({"values": values, "added": added})


@csrf_exempt
def write(request: HttpRequest) -> JsonResponse:
    """The server writes {name: value}: how signed and encrypted values reach the browser."""
    for name, value in json.loads(request.body).items():
        STATES[name].set(request, value)
    return JsonResponse({})


urlpatterns = [
    path("budget/", page),
    path("budget/echo/", echo),
    path("budget/write/", write),
    path("statekit/", include("statekit.urls")),
    path("favicon.ico", lambda request: HttpResponse(status=204)),  # asked for by the form's answer
]
