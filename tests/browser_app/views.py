"""The pages and endpoints of the browser tests."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from tests.browser_app.state import STATES, creds, theme

SHOWN = [name for name, state in STATES.items() if not state.encrypted]


def strict_csp(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Serve the page under a strict Content-Security-Policy with a nonce, like django-csp."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        request.csp_nonce = secrets.token_urlsafe(16)
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = (
            f"default-src 'self'; img-src 'self' data:; script-src 'nonce-{request.csp_nonce}'; "
            "object-src 'none'; base-uri 'none'"
        )
        return response

    return wrapper


@strict_csp
def creds_page(request: HttpRequest) -> HttpResponse:
    return render(request, "browser_app/creds.html")


@require_POST
def generate(request: HttpRequest) -> JsonResponse:
    """The seed's "Generate randomly" button: the server writes new credentials."""
    value = {"username": f"user-{secrets.token_hex(4)}", "password": secrets.token_urlsafe(12)}
    creds.set(request, value)
    return JsonResponse(value)


@strict_csp
def values(request: HttpRequest) -> HttpResponse:
    return render(request, "browser_app/values.html", {"names": SHOWN})


def unprotected(request: HttpRequest) -> HttpResponse:
    """The same page without CSP: only statekit's escaping stands between a value and XSS."""
    return render(request, "browser_app/values.html", {"names": SHOWN})


def sandboxed(request: HttpRequest) -> HttpResponse:
    """The page in a sandbox with an opaque origin, where localStorage is unavailable."""
    response = render(request, "browser_app/values.html", {"names": SHOWN})
    response["Content-Security-Policy"] = "sandbox allow-scripts"
    return response


def echo(request: HttpRequest) -> JsonResponse:
    """What the server reads of every test state from this request."""
    return JsonResponse({name: state.get(request) for name, state in STATES.items()})


@require_POST
def write(request: HttpRequest) -> JsonResponse:
    """Server-side writes: {"set": {name: value}, "delete": [name, ...]}."""
    body = json.loads(request.body)
    for name, value in body.get("set", {}).items():
        STATES[name].set(request, value)
    for name in body.get("delete", []):
        STATES[name].delete(request)
    if body.get("then") == "redirect":
        return redirect("echo")
    return JsonResponse({"written": sorted([*body.get("set", {}), *body.get("delete", [])])})


@strict_csp
def late(request: HttpRequest) -> HttpResponse:
    """A write made after the page rendered: the middleware adds it to the page."""
    html = render_to_string("browser_app/values.html", {"names": SHOWN}, request=request)
    theme.set(request, "late")
    return HttpResponse(html)


def unprotected_form(request: HttpRequest) -> HttpResponse:
    """A plain POST form: the page's theme arrives in the hidden field, the new one goes back
    in the rendered page, or across a redirect."""
    if request.method == "POST":
        before = theme.get(request)
        theme.set(request, request.POST["theme"])
        if request.POST.get("then") == "redirect":
            return redirect(f"{request.path}?{urlencode({'before': before})}")
        return render(request, "browser_app/form.html", {"before": before})
    return render(request, "browser_app/form.html", {"before": request.GET.get("before", "")})


form = strict_csp(unprotected_form)


def htmx_page(request: HttpRequest) -> HttpResponse:
    """A page that posts with htmx 2 (XMLHttpRequest). No CSP: htmx adds inline styles."""
    return render(request, "browser_app/htmx.html")


@require_POST
def htmx_theme(request: HttpRequest) -> HttpResponse:
    """An htmx endpoint answering with a fragment, like most htmx views."""
    before = theme.get(request)
    theme.set(request, request.POST["theme"])
    return render(request, "browser_app/htmx_fragment.html", {"before": before})
