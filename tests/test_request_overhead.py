"""What statekit costs a request that does not use it (issue 12, item 4).

- ``StatekitMiddleware`` on a view that reads no browser state does not build
  ``request.headers`` (a dict of every header) and hooks the session with one class
  assignment, not six closures (the session hooks themselves are tested in test_lifecycle).
- A ``public=True`` write with no channel layer configured raised and caught a KeyError inside
  Channels on every write: the alias is now looked up first, so no exception is raised.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings

from statekit import GlobalState
from statekit.middleware import StatekitMiddleware
from statekit.streams.feeds import LocalHub, hub
from statekit.streams.layer import LayerHub

pytestmark = pytest.mark.django_db(transaction=True)

banner = GlobalState("test_request_overhead.banner", default="", public=True)


@contextmanager
def raised_in_channels() -> Iterator[list[BaseException]]:
    """The exceptions raised inside Channels in this thread while the block runs, caught or
    not (Django and asgiref raise and catch some on every query; those are not counted)."""
    found: list[BaseException] = []

    def trace(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        if event == "exception":
            if frame.f_globals.get("__name__", "").startswith("channels."):
                found.append(arg[1])
        return trace

    sys.settrace(trace)
    try:
        yield found
    finally:
        sys.settrace(None)


@pytest.mark.parametrize(
    "layers",
    [
        pytest.param({}, id="no-channel-layers"),
        pytest.param(
            {"other": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}, id="other-alias"
        ),
    ],
)
def test_public_write_without_a_channel_layer_raises_nothing(layers: dict[str, Any]) -> None:
    with override_settings(CHANNEL_LAYERS=layers):
        banner.set("warm")  # first write: imports, connections
        with raised_in_channels() as exceptions:
            banner.set("hello")
        assert isinstance(hub(), LocalHub)  # db on SQLite: changes of this process
    assert exceptions == []
    assert banner.get() == "hello"


def test_a_network_channel_layer_carries_the_changes_of_db_on_sqlite() -> None:
    assert isinstance(hub(), LocalHub)  # the in-memory layer: this process only
    layer = {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": []}}
    with override_settings(CHANNEL_LAYERS={"default": layer}):
        assert isinstance(hub(), LayerHub)


def test_middleware_on_a_plain_view_builds_no_headers_and_no_closures() -> None:
    seen: list[HttpRequest] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse("ok")

    handler = SessionMiddleware(StatekitMiddleware(view))
    for _ in range(2):  # the second request reuses the hooked session class
        request = RequestFactory().get("/", HTTP_ACCEPT="text/html")
        response = handler(request)
        assert response.status_code == 200
        assert "headers" not in request.__dict__
        session = request.session
        assert not {"cycle_key", "flush", "delete"} & set(vars(session))
        assert type(session).cycle_key is not SessionBase.cycle_key
    assert type(seen[0].session) is type(seen[1].session)
