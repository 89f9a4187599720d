"""How pages reach live state: the websocket (Channels) when the ASGI application routes it to
statekit's consumer, else the event stream (:mod:`statekit.live.sse`, plain ASGI) when
``statekit.urls`` is included. :func:`live_config` tells statekit.js which (through
``{% statekit_js %}``); the system checks (statekit.W031) warn when neither is wired."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch, get_script_prefix, reverse
from django.utils.module_loading import import_string

from statekit.conf import get_settings
from statekit.keys import SCOPES
from statekit.state import pages


def _routes_consumer(app: Any, depth: int = 0) -> bool:
    """Whether the ASGI application ``app`` routes websockets to statekit's consumer."""
    if app is None or depth > 30:
        return False
    consumer = getattr(app, "consumer_class", None)
    if isinstance(consumer, type):
        from statekit.live.consumer import StateConsumer  # statekit[live], as app routes one

        return issubclass(consumer, StateConsumer)
    mapping = getattr(app, "application_mapping", None)  # ProtocolTypeRouter
    if isinstance(mapping, dict):
        return _routes_consumer(mapping.get("websocket"), depth + 1)
    routes = getattr(app, "routes", None) or ()  # URLRouter
    if any(_routes_consumer(getattr(r, "callback", None), depth + 1) for r in routes):
        return True
    # Middleware (AuthMiddlewareStack, OriginValidator...) keeps the application it wraps.
    return any(_routes_consumer(getattr(app, a, None), depth + 1) for a in ("inner", "application"))


@lru_cache(maxsize=8)
def _missing_for(path: str | None) -> str | None:
    if not path:
        return "ASGI_APPLICATION is not set (a WSGI server cannot serve websockets)"
    try:
        app = import_string(path)
    except Exception:
        return None  # Not importable: the server reports it when it starts.
    if _routes_consumer(app):
        return None
    return f"ASGI_APPLICATION = {path!r} routes no websocket to statekit's consumer"


def websocket_route_missing() -> str | None:
    """Why pages cannot open statekit's websocket, or None when the route is there."""
    return _missing_for(getattr(settings, "ASGI_APPLICATION", None))


def events_url() -> str | None:
    """The URL of the event stream, or None when ``statekit.urls`` is not included."""
    try:
        return reverse("statekit:events")
    except NoReverseMatch:
        return None


def live_config() -> dict[str, Any]:
    """What statekit.js needs to watch state (``{% statekit_js %}`` puts it in the page):
    the websocket's path (``path``) when it is routed, else the event stream's (``events``),
    and the scopes a page may watch."""
    config: dict[str, Any] = {"scopes": [scope.value for scope in SCOPES]}
    if websocket_route_missing() is None:
        config["path"] = get_script_prefix().rstrip("/") + get_settings()["WS_PATH"]
    else:
        config["events"] = events_url()
        config["pageField"] = pages.FIELD
    return config
