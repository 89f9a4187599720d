"""A name means one thing per scope; declarations are validated at start-up."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from statekit import GlobalState, SessionState, StateTypeError
from statekit.registry import declared


def test_the_same_declaration_twice_is_fine(name):
    first = SessionState(name, default=list, ttl=60)
    again = SessionState(name, default=list, ttl=datetime.timedelta(seconds=60))
    assert first.ttl == again.ttl == 60.0
    assert GlobalState(name + "x", default={"a": 1}) and GlobalState(name + "x", default={"a": 1})


@pytest.mark.parametrize(
    "other",
    [
        {"default": 1},
        {"default": dict},
        {"ttl": 61},
    ],
)
def test_a_different_declaration_raises(name, other):
    SessionState(name, default=list, ttl=60)
    with pytest.raises(ImproperlyConfigured, match=f"{name!r} is declared twice"):
        SessionState(name, **{"default": list, "ttl": 60, **other})


def test_scopes_have_separate_names(name):
    GlobalState(name, default=0)
    SessionState(name, default="x")
    scopes = {v.scope for v in declared() if v.name == name}
    assert scopes == {"global", "session"}
    assert [v.name for v in declared("global") if v.name == name] == [name]


def test_declaration_error_names_both_places(name):
    GlobalState(name, default=0)
    with pytest.raises(ImproperlyConfigured) as caught:
        GlobalState(name, default=1)
    assert "tests.test_declarations" in str(caught.value)


@pytest.mark.parametrize("bad", ["", "has space", "x" * 201, 5, "semi;colon"])
def test_invalid_names_are_refused(bad):
    with pytest.raises(ImproperlyConfigured, match="name"):
        GlobalState(bad)


@pytest.mark.parametrize("ttl", [0, -1, "60", True])
def test_invalid_ttl_is_refused(name, ttl):
    with pytest.raises(ImproperlyConfigured, match="ttl"):
        SessionState(name, ttl=ttl)


def test_unstorable_default_is_refused_at_declaration(name):
    with pytest.raises(StateTypeError, match=rf"{name}\.when"):
        GlobalState(name, default={"when": object()})


def test_public_is_part_of_the_declaration(name):
    assert GlobalState(name, default=0, public=True).public
    with pytest.raises(ImproperlyConfigured):
        GlobalState(name, default=0)


def test_apps_state_modules_are_discovered_at_start_up():
    code = (
        "import django; django.setup();"
        "from statekit.registry import declared; print(sorted(v.name for v in declared()))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "example_project.settings"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "'visitors'" in out.stdout  # declared in example_project/demo/state.py
