"""The backend contract: every test runs on db (SQLite, PostgreSQL), cache and cached_db."""

from __future__ import annotations

import datetime
import time
import uuid
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import RequestFactory, override_settings

from statekit import GlobalState, SessionState, StateTypeError, ValueTooLarge
from statekit.signals import state_changed
from tests.conftest import ALL_BACKENDS

pytestmark = pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)


@pytest.fixture
def changes():
    """Records every state_changed signal as a dict of its kwargs."""
    seen: list[dict] = []

    def receiver(sender, **kwargs):
        seen.append(
            {"sender": sender, **{k: kwargs[k] for k in ("scope", "name", "owner", "old", "new")}}
        )

    state_changed.connect(receiver)
    yield seen
    state_changed.disconnect(receiver)


def test_global_get_set_update_incr_delete(backend, name):
    v = GlobalState(name, default=0)
    assert v.get() == 0
    v.set(41)
    assert v.get() == 41
    assert v.incr() == 42
    assert v.incr(8) == 50
    assert v.update(lambda n: n * 2) == 100
    v.delete()
    assert v.get() == 0
    v.delete()  # deleting what is not there is fine
    assert v.get() == 0


def test_json_and_django_types_round_trip(backend, name):
    value = {
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 1, 2),
        "at": datetime.time(12, 30),
        "took": datetime.timedelta(days=1, seconds=2, microseconds=3),
        "price": Decimal("19.99"),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "nested": [1, 2.5, "x", None, True, {"__sk__": "not a tag"}],
        "unicode": "héllo ✓",
    }
    v = GlobalState(name, default=None)
    v.set(value)
    assert v.get() == value
    assert type(v.get()["price"]) is Decimal


def test_defaults_are_copies_and_factories_are_called(backend, name):
    copied = GlobalState(name, default={"items": []})
    first = copied.get()
    first["items"].append("changed")
    assert copied.get() == {"items": []}

    made = SessionState(name, default=list)
    value = made.get("session-a")
    value.append(1)
    assert made.get("session-a") == []


def test_returned_values_do_not_alias_stored_state(backend, name):
    v = GlobalState(name, default=list)
    v.set([1])
    got = v.get()
    got.append(2)
    assert v.get() == [1]
    v.update(lambda items: [*items, 3])
    assert v.get() == [1, 3]


def test_update_gets_the_default_when_nothing_is_stored(backend, name):
    v = SessionState(name, default=list)
    assert v.update("s1", lambda items: [*items, "a"]) == ["a"]
    assert v.update("s1", lambda items: [*items, "b"]) == ["a", "b"]


def test_incr_numbers(backend, name):
    ints = GlobalState(name, default=0)
    assert ints.incr(-5) == -5
    floats = GlobalState(name + "f", default=0.5)
    assert floats.incr(0.25) == 0.75
    money = GlobalState(name + "d", default=Decimal("1.10"))
    assert money.incr(Decimal("2.05")) == Decimal("3.15")
    huge = GlobalState(name + "h", default=2**70)
    assert huge.incr() == 2**70 + 1
    near = GlobalState(name + "n", default=2**63 - 1)
    assert near.incr() == 2**63


def test_incr_on_a_non_number_raises_and_writes_nothing(backend, name):
    v = GlobalState(name, default="text")
    with pytest.raises(StateTypeError, match=name):
        v.incr()
    flag = GlobalState(name + "b", default=True)
    with pytest.raises(StateTypeError):
        flag.incr()
    assert v.get() == "text"
    v.set([1])
    with pytest.raises(StateTypeError):
        v.incr(1)
    assert v.get() == [1]


def test_unstorable_value_names_the_path_and_writes_nothing(backend, name):
    cart = SessionState(name, default=list)
    cart.set("s1", [{"price": 1}])
    bad = [{"price": 1}, {"price": 2}, {"price": object()}]
    with pytest.raises(StateTypeError) as caught:
        cart.set("s1", bad)
    assert f"{name}[2].price" in str(caught.value)
    assert isinstance(caught.value, TypeError)
    with pytest.raises(StateTypeError):
        cart.update("s1", lambda items: [*items, {1, 2}])
    assert cart.get("s1") == [{"price": 1}]


def test_value_over_the_size_limit_raises_and_writes_nothing(backend, name):
    v = GlobalState(name, default="")
    v.set("small")
    with override_settings(STATEKIT={**_conf(), "MAX_VALUE_BYTES": 100}):
        with pytest.raises(ValueTooLarge, match="MAX_VALUE_BYTES"):
            v.set("x" * 200)
        with pytest.raises(ValueTooLarge):
            v.update(lambda s: s * 100)
        assert v.get() == "small"


def test_update_that_raises_writes_nothing(backend, name):
    v = GlobalState(name, default=1)
    v.set(5)

    def boom(value):
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        v.update(boom)
    assert v.get() == 5


def test_session_state_is_per_owner(backend, name):
    cart = SessionState(name, default=list)
    cart.set("alice", ["apple"])
    cart.set("bob", ["pear"])
    assert cart.get("alice") == ["apple"]
    assert cart.get("bob") == ["pear"]
    cart.delete("alice")
    assert cart.get("alice") == []
    assert cart.get("bob") == ["pear"]
    # the same name in global scope is a different variable
    assert GlobalState(name, default="g").get() == "g"


def test_session_owner_forms(backend, name):
    v = SessionState(name, default=0)
    request = RequestFactory().get("/")
    request.session = SessionStore()
    assert request.session.session_key is None
    v.incr(request)
    key = request.session.session_key
    assert key is not None and request.session.modified  # saved, cookie will be sent
    assert SessionStore().exists(key)
    assert v.get(key) == 1
    assert v.get(SessionStore(session_key=key)) == 1
    assert v.incr(request.session, 2) == 3

    with pytest.raises(StateTypeError, match="owner"):
        v.get(42)
    with pytest.raises(StateTypeError):
        v.get("")
    with pytest.raises(ImproperlyConfigured, match="SessionMiddleware"):
        v.get(RequestFactory().get("/"))


def test_ttl_expires_a_value_nobody_reads(backend, name):
    v = SessionState(name, default="gone", ttl=1.0)
    v.set("s1", "here")
    assert v.get("s1") == "here"
    time.sleep(1.3)
    assert v.get("s1") == "gone"
    counter = SessionState(name + "c", default=0, ttl=0.4)
    counter.incr("s1", 5)
    time.sleep(0.6)
    assert counter.incr("s1") == 1


def test_async_twins(backend, name):
    g = GlobalState(name, default=0)
    s = SessionState(name, default=list)

    async def scenario():
        assert await g.aget() == 0
        await g.aset(10)
        assert await g.aincr(5) == 15
        assert await g.aupdate(lambda n: n + 1) == 16
        await g.adelete()
        assert await g.aget() == 0
        await s.aset("s1", ["a"])
        assert await s.aupdate("s1", lambda items: [*items, "b"]) == ["a", "b"]
        assert await s.aget("s1") == ["a", "b"]
        await s.adelete("s1")
        return await s.aget("s1")

    assert async_to_sync(scenario)() == []


def test_async_owner_request_gets_a_session(backend, name):
    v = SessionState(name, default=0)
    request = RequestFactory().get("/")
    request.session = SessionStore()
    assert async_to_sync(v.aincr)(request) == 1
    assert v.get(request.session.session_key) == 1


def test_state_changed_is_sent_for_changes_only(backend, name, changes):
    v = SessionState(name, default=0)
    v.set("s1", 1)
    v.set("s1", 1)  # same content: nothing
    v.update("s1", lambda n: n)  # same content: nothing
    v.incr("s1", 2)
    v.delete("s1")
    v.delete("s1")  # nothing was there: nothing
    mine = [c for c in changes if c["name"] == name]
    assert [(c["old"], c["new"]) for c in mine] == [(None, 1), (1, 3), (3, None)]
    assert all(c["sender"] is v and c["scope"] == "session" and c["owner"] == "s1" for c in mine)


def test_state_changed_compares_content_not_identity(backend, name, changes):
    v = GlobalState(name, default=dict)
    v.set({"a": [1, 2]})
    v.set({"a": [1, 2]})  # a new but equal object
    mine = [c for c in changes if c["name"] == name]
    assert len(mine) == 1 and mine[0]["owner"] is None and mine[0]["scope"] == "global"


def test_state_changed_is_sent_after_commit(backend, name, changes):
    v = GlobalState(name, default=0)
    alias = _conf().get("DATABASE", "default")
    with transaction.atomic(using=alias):
        v.set(7)
        in_transaction = [c for c in changes if c["name"] == name]
    after = [c for c in changes if c["name"] == name]
    if backend.uses_database:
        assert in_transaction == []  # deferred until the commit
    assert [c["new"] for c in after] == [7]


def _conf() -> dict:
    from statekit.conf import get_settings

    return dict(get_settings())


def test_on_change_receives_owner_old_and_new(backend, name):
    cart = SessionState(name, default=list)
    seen = []

    @cart.on_change
    def count_items(owner, old, new):
        seen.append((owner, old, new))

    cart.set("s1", ["a"])
    cart.set("s1", ["a"])
    cart.update("s1", lambda items: [*items, "b"])
    GlobalState(name, default=0).set(1)  # another variable: not this receiver
    assert seen == [("s1", None, ["a"]), ("s1", ["a"], ["a", "b"])]


def test_incr_reports_the_value_get_returned_as_old(backend, name, changes):
    counter = GlobalState(name, default=0)
    counter.incr()
    counter.incr(2)
    scoped = SessionState(name, default=10)
    scoped.incr("s1")
    mine = [(c["old"], c["new"]) for c in changes if c["name"] == name]
    assert mine == [(0, 1), (1, 3), (10, 11)]


def test_a_repeated_declaration_is_the_same_variable_for_signals(backend, name, changes):
    first = GlobalState(name, default=0)
    again = GlobalState(name, default=0)  # the module imported twice
    seen = []
    again.on_change(lambda owner, old, new: seen.append(new))
    first.set(1)
    again.set(2)
    assert seen == [1, 2]
    assert [c["sender"] for c in changes if c["name"] == name] == [first, first]
