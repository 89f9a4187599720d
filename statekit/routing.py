"""Channels routing: plug ``websocket_urlpatterns`` into the project's ASGI router.

    # asgi.py
    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from statekit.routing import websocket_urlpatterns

    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    })

The consumer is served at ``STATEKIT["WS_PATH"]`` (default ``/ws/statekit/``), read when the
list is first taken from this module, i.e. when the router is built. It only accepts
connections whose Origin is in ``ALLOWED_HOSTS`` (cross-site websocket hijacking would
otherwise let any site read a visitor's session state).
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path

from statekit.conf import get_settings
from statekit.extras import missing_extra

try:
    from channels.security.websocket import AllowedHostsOriginValidator

    from statekit.live.consumer import StateConsumer
except ImportError as error:
    raise missing_extra(error, "statekit.routing (live state)") from None

__all__ = ["urlpatterns", "websocket_urlpatterns"]  # noqa: F822 (made by __getattr__)


def urlpatterns(ws_path: str | None = None) -> list[URLPattern]:
    """The route of the statekit consumer at ``ws_path`` (default: ``STATEKIT["WS_PATH"]``)."""
    route = (ws_path or get_settings()["WS_PATH"]).lstrip("/")
    app = AllowedHostsOriginValidator(StateConsumer.as_asgi())
    return [path(route, app, name="statekit")]


def __getattr__(name: str) -> Any:
    # Built on access, not at import, so settings are read lazily (override_settings works).
    if name == "websocket_urlpatterns":
        return urlpatterns()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
