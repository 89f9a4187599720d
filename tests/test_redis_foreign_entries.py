"""Keys and values under statekit's Redis prefix that something else wrote, not UTF-8: the
listings (``statekit list/export/stats``, the admin) and the cleanup skip them and log their
number once at WARNING; they never crash. On the real Redis, written with redis-py."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from statekit import GlobalState, SessionState
from statekit.backends import StateKey
from statekit.cleanup import cleanup
from tests.conftest import BACKENDS

pytestmark = pytest.mark.parametrize("backend", [BACKENDS[2]], indirect=True)  # "cache"

DEAD = "deadsession0123456789"  # a session key no session has


def foreign(backend, *pairs: tuple[str | bytes, bytes]) -> list[bytes]:
    """Write ``(key after the prefix, value)`` pairs as another program would."""
    names = []
    for rest, value in pairs:
        name = f"{backend.keys.prefix}:".encode() + (
            rest if isinstance(rest, bytes) else rest.encode()
        )
        backend.redis.set(name, value)
        names.append(name)
    return names


def skipped(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "not UTF-8" in r.getMessage()
    ]


def statekit(*args: str) -> str:
    out = io.StringIO()
    call_command("statekit", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_listings_skip_what_is_not_utf8(backend, name, caplog):
    GlobalState(name, default=0).set(7)
    SessionState(name + "s", ttl=600).set(DEAD, ["mine"])
    foreign(
        backend,
        (b"global::" + name.encode() + b"\xff\xfe", b"1"),  # a key that is not UTF-8
        (f"session:{DEAD}:".encode() + b"\xc3(", b"2"),
        (f"global::{name}x", b"\xff\xfe\xfd"),  # a value that is not UTF-8
        (f"session:{DEAD}:{name}y", b"\x80"),
    )
    caplog.set_level(logging.INFO)
    shown = {(e.key, e.text) for e in backend.scan(expired=None)}
    assert shown == {
        (StateKey("global", "", name), "7"),
        (StateKey("session", DEAD, name + "s"), '["mine"]'),
    }
    assert len(skipped(caplog)) == 1 and " 4 " in skipped(caplog)[0]

    assert {json.loads(line)["name"] for line in statekit("export").splitlines()} == {
        name,
        name + "s",
    }
    assert name in statekit("list", "--status", "all")
    assert name in statekit("stats")

    admin = Client()
    admin.force_login(User.objects.create_superuser("root", password="x"))
    response = admin.get("/admin/statekit/statevalue/")
    assert response.status_code == 200
    assert {obj.name for obj in response.context["cl"].result_list} == {name, name + "s"}


def test_the_cleanup_skips_what_is_not_utf8(backend, name, caplog):
    ran = []
    cart = SessionState(name, ttl=600, on_expire=ran.append)
    cart.set(DEAD, ["ended"])  # of a session that is gone: taken by the cleanup
    cart.set("expired1", ["due"])
    backend.expire(StateKey("session", "expired1", name), 0)
    left = foreign(backend, (f"session:{DEAD}:".encode() + b"\xff", b"1"))
    taken = foreign(
        backend,
        (f"session:{DEAD}:{name}bad", b"\xff"),  # its session ended
        (f"session:livekey:{name}bad", b"\xfe"),  # due now (below)
    )
    backend.redis.zadd(backend.keys.index(StateKey("session", "livekey", name)), {taken[1]: 0})
    caplog.set_level(logging.INFO)
    report = cleanup()
    assert sorted(map(str, ran)) == ["['due']", "['ended']"]
    assert report.expired == 1 and report.ended == 1
    assert [backend.redis.exists(n) for n in (*left, *taken)] == [1, 0, 0]
    assert len(skipped(caplog)) == 2  # once per pass: the expired ones, the ended sessions
    assert backend.count_expired() == 0


def test_a_login_moves_a_session_past_what_is_not_utf8(backend, name):
    SessionState(name, ttl=600).set("old0", 1)
    left = foreign(backend, (b"session:old0:" + name.encode() + b"\xff", b"1"))
    backend.move_owner("old0", "new0")
    assert backend.get(StateKey("session", "new0", name)) == "1"
    assert backend.redis.exists(*left) == 1
