"""Expiry and lifecycle: sliding TTLs, on_expire, session end and login, page state."""

from __future__ import annotations

import time

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

from statekit import PageState, SessionState
from statekit.backends import StateKey, get_backend
from statekit.cleanup import cleanup
from statekit.conf import get_settings
from statekit.lifecycle.pages import close
from tests import lifecycle_app
from tests.conftest import ALL_BACKENDS
from tests.lifecycle_app import EXPIRED, cart

every_backend = pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)

LIFECYCLE = override_settings(ROOT_URLCONF="tests.lifecycle_app")


@pytest.fixture(autouse=True)
def _fresh():
    EXPIRED.clear()
    with LIFECYCLE:
        yield


@every_backend
def test_a_read_slides_the_ttl(backend, name):
    v = SessionState(name, default="gone", ttl=2.0)
    v.set("s1", "kept")
    for _ in range(6):
        time.sleep(0.5)
        assert v.get("s1") == "kept"  # 3 s after the write, read every 0.5 s
    time.sleep(2.5)
    assert v.get("s1") == "gone"


@every_backend
def test_a_read_extends_the_expiry_once_it_is_short_by_the_slack(backend, statekit_state, name):
    """Reads do not write each time: a read with a ttl of 100 s moves the expiry only once it
    is more than 10 s (the slack) short of now + 100 s, on every backend."""
    v = SessionState(name, default="gone", ttl=100)
    v.set("s1", "kept")

    def left() -> float:  # seconds until the stored expiry
        [entry] = get_backend().scan("session", name)  # statekit_state's prefix
        return (entry.expires_at - timezone.now()).total_seconds()

    assert 98 < left() <= 100
    statekit_state.clock.advance(5)
    assert v.get("s1") == "kept"
    assert 93 < left() <= 95  # 5 s short: within the slack, not extended
    statekit_state.clock.advance(6)
    assert v.get("s1") == "kept"
    assert 98 < left() <= 100  # 11 s short: extended to now + 100 s


@every_backend
def test_on_expire_runs_once_for_a_value_nobody_read(backend, statekit_state, name):
    seen = []
    v = SessionState(name, default=0, ttl=30, on_expire=seen.append)
    v.set("s1", 41)
    v.set("s2", 42)
    statekit_state.clock.advance(29)
    assert cleanup(dry_run=True).expired == 0
    statekit_state.clock.advance(2)
    report = cleanup()
    assert sorted(seen) == [41, 42]
    assert report.expired >= 2 and report.callbacks >= 2
    cleanup()
    assert sorted(seen) == [41, 42]


@every_backend
def test_a_write_over_an_expired_value_still_runs_its_on_expire(backend, statekit_state, name):
    seen = []
    v = SessionState(name, default=list, ttl=30, on_expire=seen.append)
    v.set("s1", ["old"])
    statekit_state.clock.advance(31)
    assert v.update("s1", lambda items: [*items, "new"]) == ["new"]
    v.set("s2", ["other"])
    statekit_state.clock.advance(31)
    v.delete("s2")  # deleting a dead value keeps it for on_expire too
    cleanup()
    assert sorted(seen, key=str) == [["new"], ["old"], ["other"]]


@every_backend
def test_cycle_key_at_login_carries_state_over(backend):
    client = Client()
    assert client.get("/put/apple/").json() == {"cart": ["apple"]}
    before = client.get("/read/").json()["session"]
    after = client.post("/login/").json()["session"]
    assert after != before
    assert client.get("/read/").json()["cart"] == ["apple"]
    assert cart.get(before) == []  # nothing left under the old key
    assert client.get("/put/pear/").json() == {"cart": ["apple", "pear"]}


@every_backend
def test_logout_ends_the_state_and_cleanup_runs_on_expire(backend):
    client = Client()
    client.get("/put/apple/")
    old = client.get("/read/").json()["session"]
    client.post("/logout/")
    assert client.get("/read/").json()["cart"] == []  # a new session starts empty
    assert cart.get(old) == ["apple"]  # unreachable, until the cleanup
    report = cleanup()
    assert ("cart", ["apple"]) in EXPIRED and report.ended >= 1
    assert cart.get(old) == []


@every_backend
def test_expired_and_cleared_sessions_end_their_state(backend):
    first, second = Client(), Client()
    first.get("/put/a/")
    second.get("/put/b/")
    key = first.cookies["sessionid"].value
    Session.objects.filter(session_key=key).delete()  # what clearsessions does
    cleanup()
    assert EXPIRED == [("cart", ["a"])]
    assert second.get("/read/").json()["cart"] == ["b"]


@every_backend
def test_two_tabs_have_their_own_page_state_and_a_refresh_starts_afresh(backend):
    client = Client()
    tab1 = client.get("/page/").json()["page"]
    tab2 = client.get("/page/").json()["page"]
    assert client.get("/say/hi/", headers={"X-Statekit-Page": tab1}).json() == {"chat": ["hi"]}
    assert client.get("/say/yo/", headers={"X-Statekit-Page": tab2}).json() == {"chat": ["yo"]}
    assert client.get("/say/ho/", headers={"X-Statekit-Page": tab1}).json() == {
        "chat": ["hi", "ho"]
    }
    refreshed = client.get("/page/").json()["page"]
    assert client.get("/say/new/", headers={"X-Statekit-Page": refreshed}).json() == {
        "chat": ["new"]
    }
    # forms send the page id as a field
    assert client.post("/say/f/", {"statekit_page": tab2}).json() == {"chat": ["yo", "f"]}


@every_backend
def test_page_ids_survive_login_but_not_logout(backend):
    client = Client()
    tab = client.get("/page/").json()["page"]
    client.get("/say/hi/", headers={"X-Statekit-Page": tab})
    client.post("/login/")
    assert client.get("/say/ho/", headers={"X-Statekit-Page": tab}).json() == {"chat": ["hi", "ho"]}
    client.post("/logout/")
    assert client.get("/say/x/", headers={"X-Statekit-Page": tab}).status_code == 400


@pytest.mark.django_db
def test_a_tampered_or_foreign_page_id_is_refused():
    alice, mallory = Client(), Client()
    tab = alice.get("/page/").json()["page"]
    token, signature = tab.split(":", 1)
    forged = f"{token[:-1]}{'0' if token[-1] != '0' else '1'}:{signature}"
    assert alice.get("/say/x/", headers={"X-Statekit-Page": forged}).status_code == 400
    mallory.get("/page/")
    assert mallory.get("/say/x/", headers={"X-Statekit-Page": tab}).status_code == 400
    assert alice.get("/say/x/").status_code == 400  # no page id at all
    assert alice.get("/say/ok/", headers={"X-Statekit-Page": tab}).status_code == 200


@every_backend
def test_a_closed_page_keeps_its_state_for_page_closed_ttl(backend):
    client = Client()
    tab = client.get("/page/").json()["page"]
    other = client.get("/page/").json()["page"]
    client.get("/say/bye/", headers={"X-Statekit-Page": tab})
    client.get("/say/stay/", headers={"X-Statekit-Page": other})
    with override_settings(STATEKIT={**get_settings(), "PAGE_CLOSED_TTL": 1.5}):
        response = client.post("/statekit/page/close/", {"statekit_page": tab})
        assert response.status_code == 204
        assert client.get("/say/still/", headers={"X-Statekit-Page": tab}).json() == {
            "chat": ["bye", "still"]
        }
        time.sleep(1.8)
        cleanup()
    assert EXPIRED == [("chat", ["bye", "still"])]
    assert client.get("/say/more/", headers={"X-Statekit-Page": other}).json() == {
        "chat": ["stay", "more"]
    }


@every_backend
def test_page_owner_strings_are_checked(backend, name):
    v = PageState(name, default=0)
    with pytest.raises(TypeError, match="page owner"):
        v.get("not-a-page-owner")
    owner = "abc." + "0" * 32
    v.set(owner, 5)
    close(owner)
    assert v.get(owner) == 5  # closed pages live PAGE_CLOSED_TTL more


@every_backend
def test_cleanup_command_dry_run_counts_and_deletes_nothing(backend, name, capsys):
    seen = []
    v = SessionState(name, default=0, ttl=0.2, on_expire=seen.append)
    for owner in ("a", "b", "c"):
        v.set(owner, 1)
    time.sleep(0.4)
    call_command("statekit_cleanup", "--dry-run")
    assert "Would delete 3 expired value(s)" in capsys.readouterr().out
    assert seen == []
    call_command("statekit_cleanup")
    out = capsys.readouterr().out
    assert "Deleted 3 expired value(s)" in out and "Ran 3 on_expire callback(s)" in out
    assert seen == [1, 1, 1]


@every_backend
def test_state_key_of_a_page_traces_its_session(backend):
    client = Client()
    tab = client.get("/page/").json()["page"]
    client.get("/say/hi/", headers={"X-Statekit-Page": tab})
    session = client.cookies["sessionid"].value
    key = StateKey("page", f"{session}.{tab.split(':')[0]}", lifecycle_app.chat.name)
    from statekit.backends import get_backend

    assert get_backend().get(key) == '["hi"]'


@every_backend
def test_a_cleanup_during_login_never_takes_the_moving_state(backend, monkeypatch):
    from django.contrib.sessions.backends.db import SessionStore

    delete = SessionStore.delete

    def delete_then_cleanup(self, session_key=None):  # a cleanup right after the old key goes
        delete(self, session_key)
        cleanup()

    monkeypatch.setattr(SessionStore, "delete", delete_then_cleanup)
    client = Client()
    client.get("/put/apple/")
    client.post("/login/")
    assert client.get("/read/").json()["cart"] == ["apple"]
    assert EXPIRED == []


@pytest.mark.django_db
def test_pages_issued_by_concurrent_requests_all_verify():
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    from statekit.state.pages import new_page, verify

    first = SessionStore()
    first.create()
    ids = []
    for _ in range(2):  # two requests of one session, each with its own copy, saved last-wins
        request = RequestFactory().get("/")
        request.session = SessionStore(session_key=first.session_key)
        ids.append(new_page(request))
        request.session.save()
    fresh = SessionStore(session_key=first.session_key)
    assert len({verify(fresh, page_id) for page_id in ids}) == 2
