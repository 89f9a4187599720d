"""statekit's template tags: ``{% load statekit %}``.

``{% statekit_js %}``
    Once per page, in ``<head>``, before the scripts that use ``statekit`` or keep their own
    reference to ``fetch`` (statekit.js wraps it; XMLHttpRequest, as htmx uses it, works in
    any order). It renders the configuration as ``json_script`` (id ``statekit-config``) and
    the ``<script src>`` of statekit.js, and delivers the request's browser-state writes.
    The script carries the CSP nonce of Django 6's ``ContentSecurityPolicyMiddleware``
    (context ``csp_nonce``, or the request's) or of django-csp (``request.csp_nonce``).
    The configuration is a JSON data block, never run, so ``script-src`` does not apply.

``{% statekit_nonce %}``
    `` nonce="..."`` with that nonce (nothing without one), for a ``<script>``, ``<style>``
    or ``<link>`` of your own, e.g. ``<script src="app.js"{% statekit_nonce %}></script>``.

``{% statekit_value "name" %}``, ``{% statekit_value "name" key="field" %}``
    A ``<span data-statekit-value="name">`` showing the value of a BrowserState (or one key
    or index of it) as text, which statekit.js keeps equal to what localStorage holds.
    An encrypted state cannot be shown: its plaintext must not reach the browser.
"""

from __future__ import annotations

import re
from typing import Any

import django
from django import template
from django.templatetags.static import static
from django.utils.html import format_html, json_script
from django.utils.safestring import SafeString

from statekit.browser.state import browser_config, get_browser_state
from statekit.browser.transport import exchange
from statekit.codec import dumps
from statekit.lifecycle.pages import page_config
from statekit.live.wiring import live_config

register = template.Library()

INDEX = re.compile(r"0|[1-9][0-9]*")


@register.simple_tag(takes_context=True)
def statekit_js(context: template.Context) -> SafeString:
    request = context.get("request")
    ex = exchange(request) if request is not None else None
    if ex is not None and ex.page:
        return SafeString("")
    writes = ex.take_for_page() if ex is not None else {}
    config: dict[str, Any] = {"browser": browser_config(writes)}
    config["live"] = live_config()  # statekit.watch: the websocket, or the event stream
    config["page"] = page_config(request)  # this page load's id (PageState's owner)
    return json_script(config, "statekit-config") + format_html(
        '<script src="{}"{}></script>', static("statekit/statekit.js"), statekit_nonce(context)
    )


@register.simple_tag(takes_context=True)
def statekit_nonce(context: template.Context) -> SafeString:
    nonce = csp_nonce(context)
    return format_html(' nonce="{}"', nonce) if nonce else SafeString("")


def csp_nonce(context: template.Context) -> str | None:
    """This response's CSP nonce: Django's (6.0+; the context processor's ``csp_nonce``, or
    the middleware's on the request) or django-csp's (``request.csp_nonce``).

    Both are lazy: a nonce enters the header only once something renders it. statekit's
    script must run, so it renders it (``str``), whether or not the page used it already.
    """
    request = context.get("request")
    nonce = context.get("csp_nonce")
    if nonce is None:
        nonce = getattr(request, "csp_nonce", None)
    if nonce is None and request is not None and django.VERSION >= (6,):
        from django.middleware.csp import get_nonce

        nonce = get_nonce(request)
    return None if nonce is None else str(nonce) or None


def _pick(value: Any, key: str) -> Any:
    """``value[key]`` as statekit.js picks it: a dict's key, a list's index, else ""."""
    if isinstance(value, dict):
        return value.get(key, "")
    if isinstance(value, list) and INDEX.fullmatch(key) and int(key) < len(value):
        return value[int(key)]
    return ""


@register.simple_tag(takes_context=True)
def statekit_value(context: template.Context, name: str, key: Any = None) -> SafeString:
    state = get_browser_state(name)
    if state.encrypted:
        raise template.TemplateSyntaxError(
            f"{{% statekit_value {name!r} %}}: {state!r} is encrypted; rendering it would "
            "show its plaintext to the browser."
        )
    request = context.get("request")
    value = state.default() if request is None else state.get(request)
    key_attribute = ""
    if key is not None:
        key = str(key)
        value = _pick(value, key)
        key_attribute = format_html(' data-statekit-key="{}"', key)
    text = value if isinstance(value, str) else dumps(value, name)
    return format_html('<span data-statekit-value="{}"{}>{}</span>', name, key_attribute, text)
