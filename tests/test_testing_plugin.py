"""The pytest plugin (statekit.testing) as a user's project meets it: a sub-pytest (pytester)
runs a user's test file against a small project, on db/SQLite and on cache/Redis."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import needs
from tests.services import REDIS_DB, REDIS_HOST, REDIS_PORT

SETTINGS = """
import os
SECRET_KEY = "user-project"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth",
                  "django.contrib.sessions", "statekit", "shop"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware",
              "statekit.middleware.StatekitMiddleware"]
ROOT_URLCONF = "shop.urls"
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}}}
STATEKIT = {{"BACKEND": os.environ["SHOP_BACKEND"]}}
CACHES = {{"default": {{"BACKEND": "django_redis.cache.RedisCache",
                        "LOCATION": "redis://{host}:{port}/{db}", "KEY_PREFIX": "{prefix}"}}}}
if STATEKIT["BACKEND"] == "db":  # no Redis needed
    CACHES = {{"default": {{"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}}}
"""

STATE = """
from statekit import GlobalState, SessionState

EXPIRED = []
visitors = GlobalState("visitors", default=0)
cart = SessionState("cart", default=list, ttl=60, on_expire=EXPIRED.append)
note = SessionState("note", default="", on_expire=EXPIRED.append)
"""

URLS = """
from django.http import JsonResponse
from django.urls import path

from shop.state import visitors

urlpatterns = [path("", lambda request: JsonResponse({"visitors": visitors.incr()}))]
"""

USER_TESTS = """
import pytest
from django.contrib.sessions.backends.db import SessionStore

from shop.state import EXPIRED, cart, note, visitors
from statekit.testing import override


def session_key():
    session = SessionStore()
    session.create()
    return session.session_key


def test_override_presets_a_value(statekit_state, client):
    statekit_state.override(visitors=10)
    assert client.get("/").json() == {"visitors": 11}


@pytest.mark.parametrize("run", [1, 2])
def test_nothing_leaks_between_tests(statekit_state, run):
    assert visitors.get() == 0  # the other run's write is not seen
    visitors.set(run)
    key = session_key()
    cart.set(key, [run])


def test_override_restores(statekit_state):
    visitors.set(4)
    with override(visitors=7):
        assert visitors.get() == 7
    assert visitors.get() == 4


def test_ttl_and_on_expire_without_sleeping(statekit_state):
    key = session_key()
    EXPIRED.clear()
    cart.set(key, ["apple"])
    statekit_state.clock.advance(50)
    assert cart.get(key) == ["apple"]  # the read slides the ttl: due 60 s from now
    statekit_state.clock.advance(50)
    assert cart.get(key) == ["apple"]
    statekit_state.clock.advance(61)
    assert cart.get(key) == []
    assert EXPIRED == []  # on_expire runs in the cleanup, not on read
    report = statekit_state.cleanup()
    assert (report.expired, EXPIRED) == (1, [["apple"]])
    assert statekit_state.cleanup().expired == 0  # once


def test_a_session_that_expires_ends_its_state(statekit_state, settings):
    key = session_key()
    EXPIRED.clear()
    note.set(key, "pear")
    statekit_state.clock.advance(settings.SESSION_COOKIE_AGE - 1)
    assert statekit_state.cleanup().ended == 0
    statekit_state.clock.advance(2)
    assert (statekit_state.cleanup().ended, EXPIRED) == (1, ["pear"])
"""


@pytest.fixture
def user_project(pytester: pytest.Pytester) -> pytest.Pytester:
    prefix = f"statekit-plugin-{uuid.uuid4().hex[:12]}"
    pytester.makepyfile(
        settings_user=SETTINGS.format(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, prefix=prefix)
    )
    pytester.mkpydir("shop")
    pytester.makepyfile(**{"shop/state": STATE, "shop/urls": URLS, "test_user": USER_TESTS})
    return pytester


@pytest.mark.parametrize(
    "backend",
    [
        "db",
        pytest.param("cache", marks=needs("redis")),
        pytest.param("cached_db", marks=needs("redis")),
    ],
)
def test_plugin_in_a_users_project(
    user_project: pytest.Pytester, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_BACKEND", backend)
    result = user_project.runpytest_subprocess(
        "--ds=settings_user", "-p", "no:randomly", "-W", "error", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=6)
