"""What statekit costs a request that does not use it (issue 12, item 4).

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
from django.test import override_settings

from statekit import GlobalState
from statekit.live import channel_layer

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
        assert channel_layer() is None
    assert exceptions == []
    assert banner.get() == "hello"


def test_public_write_with_a_channel_layer_still_finds_it() -> None:
    assert channel_layer() is not None
