"""Views for the lifecycle tests: session and page state through real requests."""

from __future__ import annotations

from django.contrib.auth import get_user_model, login, logout
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from statekit import PageState, SessionState
from statekit.state.pages import new_page

#: (name, value) of every on_expire call in this process.
EXPIRED: list[tuple[str, object]] = []

cart = SessionState("lifecycle-cart", default=list, on_expire=lambda v: EXPIRED.append(("cart", v)))
chat = PageState("lifecycle-chat", default=list, on_expire=lambda v: EXPIRED.append(("chat", v)))


def put(request: HttpRequest, item: str) -> JsonResponse:
    return JsonResponse({"cart": cart.update(request, lambda items: [*items, item])})


def read(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"cart": cart.get(request), "session": request.session.session_key})


def sign_in(request: HttpRequest) -> JsonResponse:
    user, _ = get_user_model().objects.get_or_create(username="ada")
    login(request, user)
    return JsonResponse({"session": request.session.session_key})


def sign_out(request: HttpRequest) -> JsonResponse:
    logout(request)
    return JsonResponse({})


def page(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"page": new_page(request)})


def say(request: HttpRequest, text: str) -> JsonResponse:
    return JsonResponse({"chat": chat.update(request, lambda lines: [*lines, text])})


urlpatterns = [
    path("put/<str:item>/", put),
    path("read/", read),
    path("login/", sign_in),
    path("logout/", sign_out),
    path("page/", page),
    path("say/<str:text>/", say),
    path("statekit/", include("statekit.urls")),
]
