"""One test per system check of live state, plus the clean configuration."""

from __future__ import annotations

import pytest
from django.test import override_settings

from statekit.checks import check_live_settings


def messages(**overrides):
    with override_settings(**overrides):
        return check_live_settings()


def ids(**overrides) -> list[str]:
    return [m.id for m in messages(**overrides)]


def test_default_configuration_is_clean():
    assert ids() == []


@pytest.mark.parametrize("path", ["ws/statekit/", "/ws/statekit", "/", "", None, 7])
def test_e030_ws_path_is_not_a_path(path):
    assert ids(STATEKIT={"WS_PATH": path}) == ["statekit.E030"]


@pytest.mark.parametrize("key", ["WS_MAX_MESSAGE_BYTES", "WS_MAX_WATCHES"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True, "100", None])
def test_e031_websocket_limits_are_positive_integers(key, value):
    found = messages(STATEKIT={key: value})
    assert [m.id for m in found] == ["statekit.E031"]
    assert key in found[0].msg and key in found[0].hint


def test_websockets_need_no_channel_layer():
    """Changes reach websockets through the change streams: nothing to warn about (the
    former statekit.W030)."""
    assert ids(CHANNEL_LAYERS={}) == []
    assert ids(STATEKIT={"CHANNEL_LAYER": "live"}) == []
