"""Hostile values through the API, on every backend: statekit's documented error naming the
variable and the path, and nothing written; expiries stay in a range every backend and every
reader can hold."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from statekit import GlobalState, PageState, SessionState, StateTypeError
from statekit.backends import StateKey
from statekit.codec import MAX_DEPTH
from statekit.keys import MAX_TTL
from statekit.models import StateValue


def deep(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


BAD = [
    pytest.param({"a": ["\ud800"]}, "[a][0]|\\.a\\[0\\]", id="surrogate"),
    pytest.param({"\udfff": 1}, "lone surrogate", id="surrogate-key"),
    pytest.param([1, 10**5000], r"\[1\] is an integer of over", id="huge-int"),
    pytest.param(deep(20000), f"nested over {MAX_DEPTH} levels", id="deep"),
    pytest.param({"p": Decimal("NaN")}, r"\.p is Decimal\('NaN'\)", id="decimal-nan"),
    pytest.param({"p": Decimal("sNaN")}, r"\.p is Decimal\('sNaN'\)", id="decimal-snan"),
    pytest.param(Decimal("-Infinity"), "JSON cannot store", id="decimal-inf"),
    pytest.param(float("inf"), "JSON cannot store", id="float-inf"),
]


@pytest.mark.parametrize("value, path", BAD)
def test_unstorable_values_raise_state_type_error_and_write_nothing(backend, name, value, path):
    counter = GlobalState(name, default=0)
    cart = SessionState(name, default=list, ttl=60)
    for write in (
        lambda: counter.set(value),
        lambda: counter.update(lambda old: value),
        lambda: cart.set("s1", value),
        lambda: cart.update("s1", lambda old: value),
    ):
        with pytest.raises(StateTypeError, match=path) as error:
            write()
        assert str(error.value).startswith(name)
    assert counter.get() == 0 and cart.get("s1") == []
    assert list(backend.scan(name=name, expired=None)) == []


@pytest.mark.parametrize(
    "amount",
    [Decimal("NaN"), Decimal("sNaN"), float("inf"), 10**5000, Decimal("9E+999999")],
    ids=["nan", "snan", "inf", "huge-int", "decimal-overflow"],
)
def test_incr_that_cannot_be_stored_raises_and_keeps_the_value(backend, name, amount):
    counter = GlobalState(name, default=0)
    counter.set(Decimal("9E+999999") if isinstance(amount, Decimal) else 5)
    before = counter.get()
    with pytest.raises(StateTypeError, match=name):
        counter.incr(amount)
    assert counter.get() == before


@pytest.mark.parametrize(
    "ttl", [MAX_TTL + 1, 1e300, float("nan"), float("inf"), timedelta(days=999999999), 10**400]
)
def test_a_ttl_beyond_what_backends_can_hold_is_refused_at_declaration(name, ttl):
    with pytest.raises(ImproperlyConfigured, match="at most"):
        SessionState(name, ttl=ttl)


def test_the_longest_ttl_is_stored_and_listed(backend, name):
    cart = SessionState(name, default=list, ttl=MAX_TTL)
    cart.set("s1", [1])
    (entry,) = backend.scan(name=name)
    assert entry.expires_at.year >= datetime.now(UTC).year + 99
    assert cart.get("s1") == [1]


def _odd_expiry(backend, key: StateKey) -> None:
    """Give ``key`` an expiry statekit never makes, as a hand edit of the storage would."""
    if backend.uses_database:
        StateValue.objects.using(backend.alias).filter(**key._asdict()).update(
            expires_at=datetime.max.replace(tzinfo=UTC)
        )
    else:
        raw = backend.keys.key(key)
        backend.redis.persist(raw)
        backend.redis.zadd(backend.keys.index(key), {raw: 9e18})


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati"])  # UTC+14
def test_an_odd_stored_expiry_is_listed_exported_and_shown(backend, name, settings, zone):
    settings.TIME_ZONE = zone
    cart = SessionState(name, default=list, ttl=60)
    cart.set("s1", [1])
    _odd_expiry(backend, StateKey("session", "s1", name))
    out = io.StringIO()
    for args in (["list"], ["list", "--json"], ["export"], ["stats", "--json"]):
        call_command("statekit", *args, stdout=out, stderr=io.StringIO())
    (line,) = [json.loads(x) for x in out.getvalue().splitlines() if x.startswith('{"scope"')]
    assert line["expires_at"].startswith("9999-12-31")
    assert cart.get("s1") == [1]


def test_a_session_key_no_backend_can_store_is_refused(backend, name):
    cart = SessionState(name, default=list)
    with pytest.raises(StateTypeError, match="must be an HttpRequest"):
        cart.set("s\ud800", [1])
    assert list(backend.scan(name=name, expired=None)) == []


def test_a_page_owner_no_backend_can_store_is_refused(backend, name):
    chat = PageState(name, default=list)
    with pytest.raises(StateTypeError, match="must be the request"):
        chat.set(f"s\ud800.{'0' * 32}", ["hi"])
    assert list(backend.scan(name=name, expired=None)) == []
