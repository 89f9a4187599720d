"""A chat per tab (PageState), for the page-state tests in real Chromium."""

from __future__ import annotations

from django.contrib.auth import get_user_model, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template import RequestContext, Template
from django.urls import include, path

from statekit import PageState
from statekit.state.pages import new_page

#: Every on_expire call: the chat of a closed page, after its PAGE_CLOSED_TTL.
CLOSED: list[list[str]] = []

chat = PageState("page-app.chat", default=list, on_expire=CLOSED.append)

PAGE = Template(
    """{% load statekit %}<!doctype html><html><head><title>chat</title>
<meta name="csrf-token" content="{{ csrf_token }}">{% statekit_js %}</head><body>
<form method="post" action="/chat/say/">{% csrf_token %}
<input name="text" id="text"><button id="send">Send</button></form>
<form method="post" action="/logout/">{% csrf_token %}<button id="logout">Log out</button></form>
</body></html>"""
)


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE.render(RequestContext(request)))


def say(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"chat": chat.update(request, lambda lines: [*lines, request.POST["text"]])}
    )


def page_id(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"page": new_page(request)})


def read(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"chat": chat.get(request)})


async def aread(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"chat": await chat.aget(request)})


def sign_in(request: HttpRequest) -> JsonResponse:
    user, _ = get_user_model().objects.get_or_create(username="ada")
    login(request, user)
    return JsonResponse({})


def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponseRedirect("/chat/")


urlpatterns = [
    path("chat/", page),
    path("chat/id/", page_id),
    path("chat/say/", say),
    path("chat/read/", read),
    path("chat/aread/", aread),
    path("login/", sign_in),
    path("logout/", sign_out),
    path("statekit/", include("statekit.urls")),
    path("favicon.ico", lambda request: HttpResponse(status=204)),
]
