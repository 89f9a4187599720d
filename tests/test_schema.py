"""schema=: every write checked (nothing written when it does not fit), reads typed, on every
backend; the type expressions supported; hypothesis round trips of dataclass trees."""

from __future__ import annotations

import datetime
import re
import uuid
from decimal import Decimal
from typing import Any, Literal

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statekit import GlobalState, SessionState, StateTypeError
from statekit.backends import StateKey, get_backend
from statekit.state.schema import compile_schema
from tests.schema_types import (
    Color,
    Everything,
    Item,
    Line,
    Mixed,
    Options,
    Order,
    Point,
    Tree,
)

CART = [Item("apple", Decimal("1.50")), Item("pear", Decimal("2"), ["ripe"])]


def stored(var: Any, owner: str = "") -> str | None:
    return get_backend().get(StateKey(var.scope, owner, var.name))


# -- on every backend ---------------------------------------------------------------------


def test_schema_write_read_typed(backend, name):
    cart = SessionState(name, default=list, schema=list[Item])
    assert cart.get("s1") == []
    cart.set("s1", CART)
    got = cart.get("s1")
    assert got == CART and all(isinstance(i, Item) for i in got)
    assert async_to_sync(cart.aget)("s1") == CART


def test_schema_write_rejected_names_path_and_writes_nothing(backend, name):
    cart = SessionState(name, default=list, schema=list[Item])
    cart.set("s1", CART)
    before = stored(cart, "s1")
    bad = [*CART, Item("plum", "3.10")]  # type: ignore[arg-type]
    with pytest.raises(StateTypeError, match=r"cart|\[2\]\.price: expected Decimal, got str"):
        cart.set("s1", bad)
    with pytest.raises(StateTypeError) as err:
        async_to_sync(cart.aset)("s1", bad)
    assert str(err.value) == f"{name}[2].price: expected Decimal, got str"
    assert err.value.path == f"{name}[2].price"
    assert stored(cart, "s1") == before
    with pytest.raises(StateTypeError, match=r"\[0\]: expected Item, got str"):
        cart.set("s2", ["apple"])  # type: ignore[list-item]
    assert stored(cart, "s2") is None


def test_schema_update_gets_typed_value_and_is_checked(backend, name):
    cart = SessionState(name, default=list, schema=list[Item])
    new = cart.update("s1", lambda items: [*items, Item("fig", Decimal(3))])
    assert new == [Item("fig", Decimal(3))] and isinstance(new[0], Item)
    seen = []
    cart.update("s1", lambda items: seen.append(type(items[0])) or items)
    assert seen == [Item]
    before = stored(cart, "s1")
    with pytest.raises(StateTypeError, match=r"\[1\]\.name: expected str, got int"):
        cart.update("s1", lambda items: [*items, Item(7, Decimal(1))])  # type: ignore[arg-type]
    with pytest.raises(StateTypeError, match=r"\[1\]\.name"):
        async_to_sync(cart.aupdate)("s1", lambda items: [*items, Item(7, Decimal(1))])  # type: ignore[arg-type]
    assert stored(cart, "s1") == before


def test_schema_incr_checked(backend, name):
    hits = GlobalState(name, default=0, schema=int)
    assert hits.incr() == 1
    assert async_to_sync(hits.aincr)(2) == 3
    with pytest.raises(StateTypeError, match=f"{name}: expected int, got float"):
        hits.incr(0.5)
    with pytest.raises(StateTypeError, match="incr needs numbers"):
        hits.incr(True)
    assert hits.get() == 3
    cart = GlobalState(f"{name}c", default=list, schema=list[Item])
    with pytest.raises(StateTypeError, match="incr needs numbers, got list"):
        cart.incr()
    assert stored(cart) is None
    price = GlobalState(f"{name}p", default=Decimal(0), schema=Decimal)
    assert price.incr(Decimal("1.25")) == Decimal("1.25")
    with pytest.raises(StateTypeError, match="incr"):
        price.incr(0.5)
    assert price.get() == Decimal("1.25")


def test_schema_stored_value_that_no_longer_fits(backend, name):
    """A value stored under another schema (code changed since): reading raises, naming the
    variable; set and delete still work."""
    from statekit.backends import get_backend

    get_backend().set(StateKey("global", "", name), '"seven"', None)  # what an older schema wrote
    strict = GlobalState(name, default=0, schema=int)
    with pytest.raises(StateTypeError, match=rf"stored value of '{name}' does not fit"):
        strict.get()
    with pytest.raises(StateTypeError, match="does not fit"):
        strict.update(lambda n: n + 1)
    strict.set(5)
    assert strict.get() == 5


def test_schema_on_change_gets_typed_values(backend, name):
    cart = SessionState(name, default=list, schema=list[Item])
    seen = []
    cart.on_change(lambda owner, old, new: seen.append((old, new)))
    cart.set("s1", CART[:1])
    cart.set("s1", CART)
    assert seen == [(None, CART[:1]), (CART[:1], CART)]


# -- declaration ---------------------------------------------------------------------------


def test_schema_default_must_fit(name):
    with pytest.raises(ImproperlyConfigured, match=rf"default of '{name}'.*expected int, got str"):
        GlobalState(name, default="0", schema=int)
    with pytest.raises(ImproperlyConfigured, match="expected list\\[Item\\], got None"):
        GlobalState(name, schema=list[Item])
    with pytest.raises(ImproperlyConfigured, match=r"\[0\]: expected Item, got int"):
        GlobalState(name, default=lambda: [1], schema=list[Item])


@pytest.mark.parametrize("schema", [set[int], dict[int, str], bytes, "Item", object()])
def test_schema_unsupported_types(name, schema):
    with pytest.raises(ImproperlyConfigured, match=rf"schema of '{name}'.*not supported"):
        GlobalState(name, default=None, schema=schema)


def test_schema_same_declaration_twice_and_conflict(name):
    GlobalState(name, default=list, schema=list[Item])
    GlobalState(name, default=list, schema=list[Item])
    with pytest.raises(ImproperlyConfigured, match="declared twice"):
        GlobalState(name, default=list, schema=list[Point])


# -- the type expressions (no storage involved) ------------------------------------------


def round_trip(schema: Any, value: Any) -> Any:
    node = compile_schema(schema)
    from statekit.codec import decode, encode

    return node.load(decode(encode(node.dump(value, "v"), "v")), "v")


def test_schema_all_scalar_and_container_types():
    value = Everything(
        when=datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.UTC),
        day=datetime.date(2024, 5, 1),
        at=datetime.time(8, 30),
        took=datetime.timedelta(seconds=90),
        id=uuid.uuid4(),
        color=Color.GREEN,
        kind="b",
        pair=(1, "x"),
        prices={"a": Decimal("0.10")},
        ratio=2,  # an int is a float
    )
    back = round_trip(Everything, value)
    assert back == value and back.color is Color.GREEN and type(back.ratio) is float
    assert back.pair == (1, "x") and isinstance(back.pair, tuple)


@pytest.mark.parametrize(
    ("schema", "value", "message"),
    [
        (int, True, "v: expected int, got bool"),
        (bool, 1, "v: expected bool, got int"),
        (datetime.date, datetime.datetime(2024, 1, 1), "v: expected date, got datetime"),
        (Color, "blue", "v: expected Color, got str"),
        (Literal["a", "b"], "c", "expected Literal['a', 'b']"),
        (tuple[int, str], (1,), "v: expected tuple[int, str], got tuple"),
        (dict[str, int], {"a": "1"}, "v.a: expected int, got str"),
        (int | None, "1", "v: expected int, got str"),
        (int | str, 1.5, "v: expected int | str, got float"),
        (Point, {"x": 1}, "v.y: missing"),
        (Point, {"x": 1, "y": 2, "z": 3}, "v: Point has no field 'z'"),
        (Options, {"point": {"x": 1, "y": "2"}}, "v.point.y: expected int, got str"),
        (Mixed, {"note": "n"}, "v.id: missing"),
        (Item, {"name": "a"}, "v.price: missing"),
        (list[Tree], [Tree("a", children=(Tree("b", size="2"),))], "v[0].children[0].size"),
        (
            Order,
            Order.model_construct(lines=[Line.model_construct(sku="a", qty=0)]),
            "v.lines[0].qty: Input should be greater than 0, got int",
        ),
        (list[Line], [{"sku": "a", "qty": 1}], "v[0].price: Field required"),
    ],
)
def test_schema_rejections_name_the_path(schema, value, message):
    with pytest.raises(StateTypeError, match=re.escape(message)):
        compile_schema(schema).dump(value, "v")


def test_schema_typed_dicts_and_pydantic_round_trip():
    assert round_trip(Options, {}) == {}
    assert round_trip(Mixed, {"id": 1}) == {"id": 1}
    order = Order(lines=[Line(sku="a", qty=2, price=Decimal("9.99"))])
    back = round_trip(Order, order)
    assert back == order and isinstance(back.lines[0].price, Decimal)


def test_schema_plain_form_accepted_and_read_typed():
    """What the admin, the import command and snapshots write: the stored (plain) form."""
    assert round_trip(list[Item], [{"name": "a", "price": Decimal(1)}]) == [Item("a", Decimal(1))]
    assert round_trip(Color, "red") is Color.RED


def test_schema_stored_removed_field_is_ignored_added_default_filled():
    node = compile_schema(Item)
    assert node.load({"name": "a", "price": Decimal(1), "gone": 1}, "v") == Item("a", Decimal(1))


trees = st.recursive(
    st.builds(Tree, st.text(), st.none() | st.integers(), st.just(())),
    lambda kids: st.builds(
        Tree, st.text(), st.none() | st.integers(), st.lists(kids, max_size=3).map(tuple)
    ),
    max_leaves=20,
)


@given(trees)
def test_schema_hypothesis_dataclass_tree_round_trip(tree):
    assert round_trip(Tree, tree) == tree


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trees)
def test_schema_hypothesis_dataclass_tree_round_trip_stored(backend, name, tree):
    var = GlobalState(name, default=lambda: Tree("root"), schema=Tree)
    var.set(tree)
    assert var.get() == tree
