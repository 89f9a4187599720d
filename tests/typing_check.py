"""What a user's type checker sees of the public API: checked by mypy in test_typing.py,
never imported (it would declare these variables). ``# type: ignore[code]`` lines are errors
mypy must report (strict mode reports an ignore that is not needed)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, assert_type

from django.http import HttpRequest

from statekit import BrowserState, GlobalState, PageState, SessionState
from tests.schema_types import Item, Line, Point


async def check(request: HttpRequest) -> None:
    visitors = GlobalState("typing.visitors", default=0)
    assert_type(visitors, GlobalState[int])
    assert_type(visitors.get(), int)
    assert_type(visitors.incr(), int)
    assert_type(visitors.update(lambda n: n + 1), int)
    assert_type(await visitors.aget(), int)
    visitors.set("many")  # type: ignore[arg-type]

    declared: GlobalState[int] = GlobalState("typing.declared", default=0)
    assert_type(declared.get(), int)

    cart: SessionState[list[str]] = SessionState("typing.cart", default=list)
    assert_type(cart.get(request), list[str])
    assert_type(await cart.aget(request), list[str])
    cart.set(request, ["apple"])
    cart.set(request, [1])  # type: ignore[list-item]

    step: PageState[str] = PageState("typing.step", default=lambda: "start", ttl=60)
    assert_type(step.get(request), str)

    note: PageState[str | None] = PageState("typing.note")
    assert_type(note.get(request), str | None)

    anything: GlobalState[Any] = GlobalState("typing.anything", schema=dict[str, int])
    assert_type(anything.get(), Any)

    # The schema gives the type (a class or a parametrized generic, with a default).
    items = SessionState("typing.items", default=list, schema=list[Item])
    assert_type(items, SessionState[list[Item]])
    assert_type(items.get(request), list[Item])
    assert_type(await items.aupdate(request, lambda old: old[1:]), list[Item])
    items.set(request, ["apple"])  # type: ignore[list-item]
    async for changed in items.changes(request):
        assert_type(changed, list[Item])
    point = PageState("typing.point", default=lambda: Point(x=0, y=0), schema=Point)
    assert_type(point.get(request), Point)
    line = GlobalState(
        "typing.line", default=lambda: Line(sku="tea", qty=1, price=Decimal(2)), schema=Line
    )
    assert_type(line.get(), Line)
    async for latest in line.changes():
        assert_type(latest, Line)
    scores = GlobalState("typing.scores", default=dict, schema=dict[str, int])
    assert_type(scores.get(), dict[str, int])
    price = PageState("typing.price", default=0, schema=Decimal)  # the schema's type wins
    assert_type(price.get(request), Decimal)

    theme = BrowserState("typing.theme", default="light")
    assert_type(theme.get(request), str)
