"""The codec under hostile input: whatever a caller or a client hands it, a value either
round-trips exactly or is refused with statekit's documented error, never anything else."""

from __future__ import annotations

import datetime
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statekit.codec import MAX_DEPTH, MAX_DIGITS, TAG, decode, encode
from statekit.exceptions import StateError, StateTypeError, ValueTooLarge
from statekit.state.inspection import parse

SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
text = st.text(st.characters(exclude_categories=()) | SURROGATES, max_size=12)
huge = st.integers(min_value=MAX_DIGITS - 2, max_value=MAX_DIGITS + 2).map(lambda n: 10**n - 1)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | huge
    | st.floats()  # NaN and infinities included
    | text
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.dates()
    | st.times(timezones=st.none() | st.timezones())
    | st.timedeltas()
    | st.decimals()  # NaN, sNaN and infinities included
    | st.uuids()
)
tags = st.sampled_from(["datetime", "date", "time", "timedelta", "decimal", "uuid", "dict", "x"])


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(text | st.just(TAG) | st.just("v"), inner, max_size=4)
        | st.dictionaries(st.integers() | st.none(), inner, min_size=1, max_size=2)
        | st.fixed_dictionaries({TAG: tags, "v": inner})  # a user dict that looks tagged
    )


def nested(value: Any, depth: int) -> Any:
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


values = st.recursive(scalars, containers, max_leaves=20)
deep = st.builds(nested, values, st.integers(min_value=MAX_DEPTH - 3, max_value=3 * MAX_DEPTH))


def exact(value: Any) -> Any:
    """``value`` as it comes back: tuples as lists, subclasses of str and int as their base;
    with the types kept, so 1 and True, or 1 and 1.0, differ."""
    if isinstance(value, list | tuple):
        return [exact(item) for item in value]
    if isinstance(value, dict):
        return {key: exact(item) for key, item in value.items()}
    if isinstance(value, datetime.datetime | datetime.time):
        return (type(value), value.isoformat())
    if isinstance(value, Decimal):
        return (Decimal, str(value))
    return (type(value), repr(value))


def check(value: Any) -> None:
    try:
        text = encode(value, "v")
    except (StateTypeError, ValueTooLarge) as exc:
        assert str(exc).startswith("v") or "'v'" in str(exc)  # names the variable
        return
    back = decode(text)
    assert exact(back) == exact(value)
    assert encode(back, "v") == text  # stable: change detection compares the text
    assert parse(text, "v") == back


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_any_value_round_trips_exactly_or_is_refused(value):
    check(value)


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(deep)
def test_deep_values_round_trip_or_are_refused(value):
    check(value)


def json_like(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=5) | st.just(TAG) | st.just("v"), inner, max_size=3)
        | st.fixed_dictionaries({TAG: tags | st.integers() | st.lists(st.none()), "v": inner})
        | st.fixed_dictionaries({TAG: tags})
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    json_like,
    max_leaves=15,
)


def dumped(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)  # lone surrogates as \ud800 escapes


client_text = (
    st.builds(dumped, json_values)
    | st.text(max_size=40)
    | st.builds(lambda n: "[" * n + "]" * n, st.integers(min_value=0, max_value=30000))
    | st.builds(lambda n: "1" * n, st.integers(min_value=4290, max_value=4310))
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(client_text)
def test_any_text_from_outside_is_read_or_refused(text):
    """What the admin and the command are given: a value, or StateError naming the variable."""
    try:
        value = parse(text, "v")
    except StateError as exc:
        assert "'v'" in str(exc) or str(exc).startswith("v")
        return
    assert decode(encode(value, "v")) == value


@pytest.mark.parametrize(
    "value, message",
    [
        ("\ud800", "lone surrogate"),
        ({"a": {"\udfff": 1}}, "v.a has a key with a lone surrogate"),
        (10**5000, "over 4300 digits"),
        (-(10**MAX_DIGITS), "over 4300 digits"),
        (Decimal("NaN"), "Decimal('NaN')"),
        (Decimal("sNaN"), "Decimal('sNaN')"),
        (Decimal("-Infinity"), "Decimal('-Infinity')"),
        (float("nan"), "nan"),
        (nested(0, 20000), f"nested over {MAX_DEPTH} levels"),
    ],
    ids=lambda arg: arg if isinstance(arg, str) and arg.isascii() else "",
)
def test_values_json_or_utf8_cannot_hold_are_refused(value, message):
    with pytest.raises(StateTypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        encode(value, "v")


def test_the_largest_storable_values_round_trip():
    for value in (10**MAX_DIGITS - 1, -(10**MAX_DIGITS) + 1, nested("x", MAX_DEPTH)):
        assert decode(encode(value, "v")) == value


@pytest.mark.parametrize(
    "text",
    [
        '"\\ud800"',
        "1" * 5000,
        "[" * 20000 + "]" * 20000,
        '{"__sk__": "decimal", "v": "sNaN"}',
        '{"__sk__": "decimal", "v": "Infinity"}',
        '{"__sk__": "date", "v": "2099-13-45"}',
        '{"__sk__": "timedelta", "v": [1e300, 0, 0]}',
        '{"__sk__": "timedelta", "v": [1000000000, 0, 0]}',
        '{"__sk__": "datetime", "v": "2020-01-01T00:00:00+99:00"}',
        '{"__sk__": "uuid", "v": 5}',
        '{"__sk__": "dict", "v": [[1, 2]]}',
        '{"__sk__": "dict", "v": "ab"}',
        '{"__sk__": "decimal"}',
        '{"__sk__": "decimal", "v": "1", "w": 2}',
        '{"__sk__": ["x"], "v": 1}',
        '{"__sk__": "pickle", "v": "x"}',
    ],
    ids=lambda text: text[:40],
)
def test_malformed_text_is_refused_with_statekits_error(text):
    with pytest.raises(StateTypeError, match=r"'v'|^v"):
        parse(text, "v")


def test_stored_types_still_decode():
    when = datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC)
    value = {TAG: [when, datetime.timedelta(days=-1), uuid.UUID(int=7), Decimal("-0.00")]}
    assert decode(encode(value, "v")) == value
