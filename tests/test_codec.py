"""statekit's JSON encoding: exact round trips, clear errors, the size limit."""

from __future__ import annotations

import datetime
import enum
import math
import uuid
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils.safestring import mark_safe
from hypothesis import given
from hypothesis import strategies as st

from statekit.codec import decode, encode
from statekit.exceptions import StateTypeError, ValueTooLarge

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.datetimes(timezones=st.none() | st.just(datetime.UTC))
    | st.dates()
    | st.times()
    | st.timedeltas()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.uuids()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_every_storable_value_round_trips_exactly(value):
    text = encode(value, "v")
    assert decode(text) == value
    assert encode(decode(text), "v") == text  # stable: change detection compares text


def test_tag_lookalike_dicts_are_kept_as_they_are():
    for value in [{"__sk__": "decimal", "v": "1"}, {"__sk__": {"__sk__": 1}}, {"__sk__": None}]:
        assert decode(encode(value, "v")) == value


def test_types_come_back_as_the_same_types():
    value = [Decimal("1.10"), uuid.uuid4(), datetime.timedelta(seconds=1)]
    assert [type(x) for x in decode(encode(value, "v"))] == [type(x) for x in value]


def test_subclasses_of_str_and_int_are_stored_as_their_base():
    class Colour(enum.IntEnum):
        RED = 1

    assert decode(encode([mark_safe("<b>"), Colour.RED], "v")) == ["<b>", 1]


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({1, 2}, "cart"),
        ([0, 1, {"price": object()}], "cart[2].price"),
        ({"items": [{"bad key": b"bytes"}]}, "cart.items[0]['bad key']"),
        ({"x": math.nan}, "cart.x"),
        ([math.inf], "cart[0]"),
        ({1: "int key"}, "cart"),
    ],
)
def test_unstorable_values_name_the_path(value, path):
    with pytest.raises(StateTypeError) as caught:
        encode(value, "cart")
    assert caught.value.path == path
    assert str(caught.value).startswith(path)


def test_circular_values_are_refused():
    loop: list = []
    loop.append(loop)
    with pytest.raises(StateTypeError, match="circular"):
        encode(loop, "v")


def test_size_limit_counts_utf8_bytes():
    with override_settings(STATEKIT={"MAX_VALUE_BYTES": 10}):
        encode("éééé", "v")  # 10 bytes with the quotes
        with pytest.raises(ValueTooLarge, match="'v' is 12 bytes"):
            encode("ééééé", "v")
