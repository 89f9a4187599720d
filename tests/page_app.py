"""A chat per tab (PageState), for the page-state tests in real Chromium."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import RequestContext, Template
from django.urls import include, path

from statekit import PageState

#: Every on_expire call: the chat of a closed page, after its PAGE_CLOSED_TTL.
CLOSED: list[list[str]] = []

chat = PageState("page-app.chat", default=list, on_expire=CLOSED.append)

PAGE = Template(
    """{% load statekit %}<!doctype html><html><head><title>chat</title>
<meta name="csrf-token" content="{{ csrf_token }}">{% statekit_js %}</head><body>
<form method="post" action="/chat/say/">{% csrf_token %}
<input name="text" id="text"><button id="send">Send</button></form></body></html>"""
)


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE.render(RequestContext(request)))


def say(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"chat": chat.update(request, lambda lines: [*lines, request.POST["text"]])}
    )


urlpatterns = [
    path("chat/", page),
    path("chat/say/", say),
    path("statekit/", include("statekit.urls")),
    path("favicon.ico", lambda request: HttpResponse(status=204)),
]
