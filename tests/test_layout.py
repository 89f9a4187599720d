"""The layout of the package (issue 11): layers without cycles, one grammar for keys and
owners, lifecycle hooks as signals, and the documented import paths still there."""

from __future__ import annotations

import ast
import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.test import RequestFactory

from statekit import GlobalState, registry
from statekit.exceptions import StateTypeError
from statekit.keys import (
    EXPIRED,
    Scope,
    StateKey,
    buried_prefix,
    buried_regex,
    bury,
    key_text,
    origin,
    owned_by,
    page_owner_of,
    parse_key,
    renamed,
    session_of,
)
from statekit.lifecycle.pages import close
from statekit.lifecycle.sessions import watch
from statekit.models import StateValue
from statekit.signals import page_closed, session_ended, session_moved
from tests.source import parse

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "statekit"
#: Modules whose function-local imports of statekit are not there to dodge a cycle: the app's
#: ready() (apps must be loaded first) and the pytest plugin (loaded before Django is set up).
LOCAL_IMPORTS_ALLOWED = {"statekit/apps.py", "statekit/testing.py"}
#: Modules that need an optional extra (statekit[redis], statekit[live]): imported where the
#: feature is used, so a db-only install never imports them. Not a way around a cycle.
OPTIONAL_MODULES = ("statekit.backends.redis", "statekit.backends.cluster", "statekit.live")


def _modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "migrations" not in p.parts]


def test_the_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is in the test extra"
    done = subprocess.run(
        [lint, "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_no_import_cycles_at_all():
    """Every import counts here, also those inside functions and under TYPE_CHECKING."""
    graph = grimp.build_graph("statekit")
    modules = sorted(m for m in graph.modules if ".migrations" not in m)
    cycles = [
        (a, b)
        for a, b in itertools.combinations(modules, 2)
        if graph.chain_exists(importer=a, imported=b) and graph.chain_exists(importer=b, imported=a)
    ]
    assert cycles == []


def test_no_function_local_imports_of_statekit():
    found = []
    for path in _modules():
        relative = path.relative_to(ROOT).as_posix()
        tree = parse(path)
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
                if module.startswith("statekit") and not module.startswith(OPTIONAL_MODULES):
                    found.append(f"{relative}:{node.lineno}")
    assert {f.partition(":")[0] for f in found} <= LOCAL_IMPORTS_ALLOWED, found


def test_modules_stay_readable():
    lines = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in _modules()}
    long = {path: n for path, n in lines.items() if n > 330}
    assert not long, long


# -- one grammar: statekit.keys ---------------------------------------------------------------


@pytest.mark.parametrize("scope", [Scope.SESSION, Scope.PAGE, "global"])
@pytest.mark.parametrize("name", ["cart", "a:b:c", "x.y-z"])
def test_a_buried_value_names_its_variable(scope, name):
    key = StateKey(scope, "k.0123", name)
    buried = bury(key)
    assert buried.scope == EXPIRED and buried.owner == key.owner
    assert origin(buried) == (scope, name) == origin(key)
    assert buried.name.startswith(buried_prefix(scope))
    assert re.match(buried_regex(name), buried.name) and not re.match(
        buried_regex("x"), buried.name
    )
    assert bury(key) != buried  # a value buried twice keeps both


def test_the_owner_grammar():
    owner = page_owner_of("abc", "f" * 32)
    assert owner == "abc." + "f" * 32
    assert session_of(owner) == session_of("abc") == "abc"
    assert owned_by(owner, "abc") and owned_by("abc", "abc")
    assert not owned_by("abcd", "abc") and not owned_by("abcd.1", "abc")
    assert renamed(owner, "abc", "xyz") == "xyz." + "f" * 32
    assert renamed("abc", "abc", "xyz") == "xyz"
    assert renamed("abcd", "abc", "xyz") == "abcd" and renamed("q.1", "abc", "xyz") == "q.1"


def test_key_text_round_trips_and_refuses_other_text():
    key = StateKey(Scope.PAGE, "abc.0f", "name:with:colons")
    assert parse_key(key_text(key)) == key
    for text in ("browser:x:y", "nope", "global:only"):
        with pytest.raises(StateTypeError):
            parse_key(text)


@pytest.mark.django_db
def test_scopes_are_one_enum_with_the_model_field():
    assert StateValue._meta.get_field("scope").choices == Scope.choices
    call_command("makemigrations", "statekit", "--check", "--dry-run", verbosity=0)


def test_the_registry_keeps_the_first_declaration(name):
    first = GlobalState(name, default=1)
    again = GlobalState(name, default=1)
    assert registry.lookup("global", name) is first is again.sender
    assert first in registry.declared(Scope.GLOBAL)
    assert first not in registry.declared(Scope.SESSION)


# -- lifecycle hooks are signals ----------------------------------------------------------------


def _recorder(seen: list[tuple[str, dict[str, str]]], tag: str):
    def receive(sender: object, signal: object, **kwargs: str) -> None:
        seen.append((tag, kwargs))

    return receive


@pytest.fixture
def lifecycle_signals():
    seen: list[tuple[str, dict[str, str]]] = []
    tags = {session_moved: "moved", session_ended: "ended", page_closed: "closed"}
    receivers = {signal: _recorder(seen, tag) for signal, tag in tags.items()}
    for signal, receiver in receivers.items():
        signal.connect(receiver)
    yield seen
    for signal, receiver in receivers.items():
        signal.disconnect(receiver)


@pytest.mark.django_db
def test_login_logout_and_page_close_are_lifecycle_signals(lifecycle_signals):
    """sessions.py sends them; resources subscribe (no import of resources from sessions)."""
    request = RequestFactory().get("/")
    request.session = SessionStore()
    request.session["x"] = 1
    request.session.save()
    watch(request)
    old = request.session.session_key
    request.session.cycle_key()  # login()
    new = request.session.session_key
    request.session.flush()  # logout()
    close(page_owner_of(new, "0" * 32))  # the pagehide beacon
    assert lifecycle_signals == [
        ("moved", {"old": old, "new": new}),
        ("ended", {"session_key": new}),
        ("closed", {"owner": f"{new}.{'0' * 32}"}),
    ]


def test_the_documented_import_paths_still_work():
    from statekit.admin import StateValueAdmin
    from statekit.backends import BaseBackend, StateKey, backend_class
    from statekit.cleanup import cleanup
    from statekit.middleware import StatekitMiddleware
    from statekit.pages import ForgedPageId, InvalidPageId, PageIdMissing, StalePageId, page_owner
    from statekit.routing import websocket_urlpatterns

    assert issubclass(ForgedPageId, InvalidPageId) and issubclass(StalePageId, InvalidPageId)
    assert callable(cleanup) and callable(page_owner) and PageIdMissing
    assert StateValueAdmin and StatekitMiddleware and websocket_urlpatterns and StateKey
    for alias in ("db", "cache", "cached_db"):
        assert issubclass(backend_class(alias), BaseBackend)
    for dotted in (
        "statekit.backends.db.DatabaseBackend",
        "statekit.backends.cache.CacheBackend",
        "statekit.backends.cached_db.CachedDatabaseBackend",
    ):
        assert issubclass(backend_class(dotted), BaseBackend)
