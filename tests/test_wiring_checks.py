"""One test per wiring check: statekit.W002 (statekit.urls), statekit.W031 (no websocket
route nor event stream) and statekit.I032 (change streams of one process)."""

from __future__ import annotations

import weakref

import pytest
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.test import override_settings

from statekit import page_resource, session_resource
from statekit.checks import check_streams, check_wiring
from tests.services import missing, usable

#: This module is also a URLconf without statekit.urls (ROOT_URLCONF=__name__).
urlpatterns: list = []

#: An ASGI application whose websockets go elsewhere than statekit's consumer.
asgi_without_statekit = ProtocolTypeRouter(
    {"http": get_asgi_application(), "websocket": URLRouter([])}
)


REDIS = {"BACKEND": "cache", "CACHE_ALIAS": "redis"}


def ids(**overrides) -> list[str]:
    with override_settings(**overrides):
        return [m.id for m in check_wiring()]


def test_the_wired_test_project_is_clean():
    assert ids() == []


def test_i032_change_streams_of_one_process_on_sqlite_at_deploy():
    with override_settings(STATEKIT={"BACKEND": "db", "DATABASE": "default"}):
        found = check_streams()
        assert [m.id for m in check_wiring()] == []  # not in a plain check (the demo)
    assert [m.id for m in found] == ["statekit.I032"]
    assert "visitors" not in found[0].msg and "PostgreSQL" in found[0].hint
    assert "websocket" in found[0].msg and "CHANNEL_LAYERS" in found[0].hint


def test_i032_not_on_sqlite_with_a_network_channel_layer():
    layer = {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": []}}
    conf = {"BACKEND": "db", "DATABASE": "default"}
    with override_settings(STATEKIT=conf, CHANNEL_LAYERS={"default": layer}):
        assert check_streams() == []


@pytest.mark.django_db(databases=["default", "postgres"])
@pytest.mark.postgres
def test_i032_not_on_postgresql_nor_redis():
    if not usable("postgres"):
        pytest.skip(missing("postgres"))
    for conf in ({"BACKEND": "db", "DATABASE": "postgres"}, REDIS):
        with override_settings(STATEKIT=conf):
            assert check_streams() == []


def test_w002_statekit_urls_missing_with_page_state():
    with override_settings(ROOT_URLCONF=__name__):
        found = check_wiring()
    assert [m.id for m in found] == ["statekit.W002"]
    assert "PageState" in found[0].msg and 'include("statekit.urls")' in found[0].hint


def test_w002_not_without_page_state_or_resources(monkeypatch: pytest.MonkeyPatch):
    from statekit import registry

    globals_only = {k: v for k, v in registry._declared.items() if k[0] == "global"}
    monkeypatch.setattr(registry, "_declared", globals_only)
    monkeypatch.setattr("statekit.lifecycle.resources._pools", weakref.WeakSet())
    assert ids(ROOT_URLCONF=__name__) == []


@pytest.mark.parametrize(
    ("declare", "named", "not_named"),
    [
        (page_resource, "page resources", "session resources"),
        (session_resource, "session resources", "page resources"),
    ],
)
def test_w002_names_the_kind_of_resources_declared(monkeypatch, declare, named, not_named):
    from statekit import registry

    globals_only = {k: v for k, v in registry._declared.items() if k[0] == "global"}
    monkeypatch.setattr(registry, "_declared", globals_only)
    monkeypatch.setattr("statekit.lifecycle.resources._pools", weakref.WeakSet())
    pool = declare(object)  # the only resources declared: of one kind
    with override_settings(ROOT_URLCONF=__name__):
        found = check_wiring()
    assert [m.id for m in found] == ["statekit.W002"] and pool is not None
    assert named in found[0].msg and not_named not in found[0].msg


def test_w031_public_state_without_asgi_nor_event_stream():
    with override_settings(ASGI_APPLICATION=None, ROOT_URLCONF=__name__):
        found = [m for m in check_wiring() if m.id == "statekit.W031"]
    assert len(found) == 1
    assert "visitors" in found[0].msg and "websocket_urlpatterns" in found[0].hint
    assert 'include("statekit.urls")' in found[0].hint


def test_w031_asgi_application_without_statekit_route_nor_event_stream():
    found = ids(ASGI_APPLICATION=f"{__name__}.asgi_without_statekit", ROOT_URLCONF=__name__)
    assert "statekit.W031" in found


@pytest.mark.parametrize("asgi", [None, f"{__name__}.asgi_without_statekit"])
def test_w031_not_when_the_event_stream_serves_live_state(asgi):
    """No websocket route, but statekit.urls is included: pages watch over SSE."""
    assert ids(ASGI_APPLICATION=asgi) == []


def test_w031_not_without_public_state(monkeypatch: pytest.MonkeyPatch):
    from statekit import registry

    private = {k: v for k, v in registry._declared.items() if not getattr(v, "public", False)}
    monkeypatch.setattr(registry, "_declared", private)
    assert ids(ASGI_APPLICATION=None) == []
