"""One test per wiring check: statekit.W002 (statekit.urls) and statekit.W031 (websockets)."""

from __future__ import annotations

import weakref

import pytest
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application
from django.test import override_settings

from statekit import page_resource, session_resource
from statekit.checks import check_wiring

#: This module is also a URLconf without statekit.urls (ROOT_URLCONF=__name__).
urlpatterns: list = []

#: An ASGI application whose websockets go elsewhere than statekit's consumer.
asgi_without_statekit = ProtocolTypeRouter(
    {"http": get_asgi_application(), "websocket": URLRouter([])}
)


def ids(**overrides) -> list[str]:
    with override_settings(**overrides):
        return [m.id for m in check_wiring()]


def test_the_wired_test_project_is_clean():
    assert ids() == []


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


def test_w031_public_state_without_asgi():
    with override_settings(ASGI_APPLICATION=None):
        found = check_wiring()
    assert [m.id for m in found] == ["statekit.W031"]
    assert "visitors" in found[0].msg and "websocket_urlpatterns" in found[0].hint


def test_w031_asgi_application_without_statekit_route():
    assert ids(ASGI_APPLICATION=f"{__name__}.asgi_without_statekit") == ["statekit.W031"]


def test_w031_not_without_public_state(monkeypatch: pytest.MonkeyPatch):
    from statekit import registry

    private = {k: v for k, v in registry._declared.items() if not getattr(v, "public", False)}
    monkeypatch.setattr(registry, "_declared", private)
    assert ids(ASGI_APPLICATION=None) == []
