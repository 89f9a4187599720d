"""The pytest plugin for projects that use statekit (loaded through the ``pytest11`` entry point).

    def test_counter(statekit_state, client):
        statekit_state.override(visitors=10)     # preset global values by name
        client.get("/")
        assert visitors.get() == 11

    def test_cart_expires(statekit_state, rf):
        cart.set("some-session-key", ["apple"])
        statekit_state.clock.advance(3601)       # ttl passes, no sleeping
        assert cart.get("some-session-key") == []
        statekit_state.cleanup()                 # runs on_expire now

The ``statekit_state`` fixture runs the test on the project's backend (or the one given by
``@pytest.mark.statekit(BACKEND="cache", ...)``, whose keywords are merged over ``STATEKIT``)
under a key prefix of its own, and deletes the test's Redis keys afterwards; database rows go
with pytest-django's rollback or flush (the fixture uses the ``db`` fixture). Nothing a test
stores is seen by another test.

The clock: statekit decides expiry by comparing a stored due time with the current time
(the database rows' ``expires_at``, the Redis due-time index). ``clock.advance(seconds)``
moves every due time of the test's state (and of database-backed Django sessions) earlier by
``seconds``, which statekit cannot tell from that much time passing: ``ttl``, sliding reads,
closed pages and ended sessions behave as they would after the wait. Process-local things
(session resources' idle time) are not moved.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ContextDecorator
from datetime import timedelta
from typing import Any

import pytest

__all__ = ["Clock", "StatekitState", "override"]

# Redis: move every due time of the index (and the keys' native expiry) earlier by ARGV[1] ms.
_AGE_SCRIPT = """
local ms = tonumber(ARGV[1])
local items = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #items, 2 do
  local key = items[i]
  redis.call('ZADD', KEYS[1], tonumber(items[i + 1]) - ms, key)
  local left = redis.call('PTTL', key)
  if left > ms then
    redis.call('PEXPIRE', key, left - ms)
  elseif left > 0 then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], key)
  end
end
return #items / 2
"""


def _variable(name: str, *, owned: bool = False) -> Any:
    """The global (``owned``: session, else page) variable declared as ``name``."""
    from statekit.keys import EXPIRING, Scope
    from statekit.registry import declared, load_declarations
    from statekit.state.inspection import NotDeclared

    scopes = EXPIRING if owned else (Scope.GLOBAL,)
    load_declarations()
    for scope in scopes:
        for variable in declared(scope):
            if variable.name == name:
                return variable
    raise NotDeclared(f"No {' or '.join(scopes)} state {name!r} is declared.")


class override(ContextDecorator):
    """Set global state by name for a block (or a decorated test), then restore it.

    ``with override(visitors=10): ...``; ``@override(visitors=10)``. Values are stored
    through ``set()``, so they are validated and sent to live pages like any write.
    """

    def __init__(self, **values: Any) -> None:
        self.values = values
        self.saved: list[tuple[Any, str | None]] = []

    def __enter__(self) -> override:
        from statekit.backends import get_backend

        backend = get_backend()
        for name, value in self.values.items():
            variable = _variable(name)
            self.saved.append((variable, backend.get(variable.key_for())))
            variable.set(value)
        return self

    def __exit__(self, *exc: object) -> None:
        from statekit.codec import decode

        while self.saved:
            variable, text = self.saved.pop()
            if text is None:
                variable.delete()
            else:
                variable.set(decode(text))


class Clock:
    """The time statekit's expiry sees in a test: it only moves when told to."""

    def __init__(self) -> None:
        self.advanced = 0.0  # seconds moved forward so far

    def advance(self, seconds: float | timedelta) -> None:
        """Age the test's stored state (and database sessions) by ``seconds``."""
        delta = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
        if delta < timedelta(0):
            raise ValueError("The statekit test clock only moves forward.")
        from statekit.backends import get_backend
        from statekit.backends.cache import CacheBackend
        from statekit.backends.db import DatabaseBackend

        backend = get_backend()
        if isinstance(backend, DatabaseBackend):
            _age_rows(backend.alias, delta)
            if backend.uses_cache:  # cached_db: drop the cached copies, the rows are the truth
                _clear_keys()
        elif isinstance(backend, CacheBackend):
            age = backend.redis.register_script(_AGE_SCRIPT)
            for index in backend.keys.indexes():  # the keys of each index are in its slot
                age(keys=[index], args=[round(delta.total_seconds() * 1000)])
        else:
            raise NotImplementedError(
                f"The statekit test clock knows the db, cache and cached_db backends, "
                f"not {type(backend).__name__}."
            )
        _age_sessions(delta)
        self.advanced += delta.total_seconds()


def _age_rows(alias: str, delta: timedelta) -> None:
    from django.db.models import F

    from statekit.models import StateValue

    rows = StateValue.objects.using(alias).filter(expires_at__isnull=False)
    rows.update(expires_at=F("expires_at") - delta)


def _database_sessions() -> Any:
    """The session model when ``SESSION_ENGINE`` keeps sessions in the database, else None."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore as DatabaseStore

    store = import_module(settings.SESSION_ENGINE).SessionStore
    return store.get_model_class() if issubclass(store, DatabaseStore) else None


def _age_sessions(delta: timedelta) -> None:
    from django.db.models import F

    model = _database_sessions()
    if model is not None:
        model.objects.update(expire_date=F("expire_date") - delta)


def _clear_keys() -> None:
    """Delete the Redis keys under the test's statekit prefix."""
    from statekit.backends.redis import RedisKeys, glob_literal

    keys = RedisKeys()
    for names in list(keys.scan(f"{glob_literal(keys.prefix)}:*")):
        keys.redis.unlink(*names)


class StatekitState:
    """What the ``statekit_state`` fixture gives a test."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings  # the STATEKIT setting in force for the test
        self.clock = Clock()

    @property
    def backend(self) -> Any:
        from statekit.backends import get_backend

        return get_backend()

    def override(self, **values: Any) -> None:
        """Set global variables by name for the rest of the test."""
        for name, value in values.items():
            _variable(name).set(value)

    def preset(self, owner: Any, **values: Any) -> None:
        """Set session (else page) variables by name for ``owner`` (request, session, key)."""
        for name, value in values.items():
            _variable(name, owned=True).set(owner, value)

    def cleanup(self) -> Any:
        """Run statekit's cleanup now (expired values, ended sessions, on_expire callbacks)."""
        from statekit.lifecycle.cleanup import cleanup

        return cleanup()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "statekit(**settings): STATEKIT settings (e.g. BACKEND='cache') for statekit_state",
    )


@pytest.fixture
def statekit_state(request: pytest.FixtureRequest, db: None) -> Iterator[StatekitState]:
    """Isolated statekit state for one test, on any backend, with a clock it controls.

    It uses pytest-django's ``db`` (rolled back after the test; a ``transactional_db`` test
    or a ``django_db`` mark take precedence, e.g. for ``databases=`` other than default)."""
    from django.conf import settings
    from django.test import override_settings

    from statekit.backends import backend_class

    marker = request.node.get_closest_marker("statekit")
    conf = {**getattr(settings, "STATEKIT", {}), **(marker.kwargs if marker else {})}
    base = conf.get("KEY_PREFIX", "statekit")
    conf["KEY_PREFIX"] = f"{base}-test-{uuid.uuid4().hex[:12]}"
    cls = backend_class(conf.get("BACKEND", "db"))
    with override_settings(STATEKIT=conf):
        try:
            yield StatekitState(conf)
        finally:
            if cls.uses_cache:
                _clear_keys()
