"""schema= beyond get and set: what leaves statekit in the stored (plain) form (live pages,
``manage.py statekit get``) and what a callback gets in the schema's type (``on_expire``)."""

from __future__ import annotations

import io
import json
import time
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from django.core.management import call_command

from statekit import GlobalState, SessionState
from statekit.cleanup import cleanup
from statekit.live.owner import current_json
from tests.live_support import live_json
from tests.schema_types import Color, Item

PEAR = {"name": "pear", "price": {"__sk__": "decimal", "v": "2"}, "tags": []}


def test_statekit_get_prints_a_typed_default_in_its_stored_form(backend, name):
    GlobalState(name, default=Item("pear", Decimal("2")), schema=Item)
    out, err = io.StringIO(), io.StringIO()
    call_command("statekit", "get", name, stdout=out, stderr=err)
    assert json.loads(out.getvalue()) == PEAR
    assert "default" in err.getvalue()


def test_a_live_page_gets_the_stored_form(backend, name):
    colour = GlobalState(name, default=Color.GREEN, schema=Color, public=True)
    assert async_to_sync(current_json)(colour, None) == '"green"'
    colour.set(Color.RED)
    assert async_to_sync(current_json)(colour, None) == '"red"'


def test_a_deletion_publishes_the_typed_default_in_its_stored_form(backend, name):
    basket = GlobalState(name, default=Item("pear", Decimal("2")), schema=Item, public=True)
    _, written = live_json(basket, lambda: basket.set(Item("apple", Decimal("1.50"), ["ripe"])))
    _, deleted = live_json(basket, basket.delete)
    assert json.loads(written) == {"name": "apple", "price": "1.50", "tags": ["ripe"]}
    assert json.loads(deleted) == {"name": "pear", "price": "2", "tags": []}


def test_on_expire_gets_the_schemas_type(backend, name):
    expired: list[Any] = []
    cart = SessionState(name, default=list, ttl=0.1, schema=list[Item], on_expire=expired.append)
    cart.set("sess1", [Item("apple", Decimal("1.50"))])
    deadline = time.monotonic() + 30
    while not expired and time.monotonic() < deadline:
        time.sleep(0.2)
        cleanup()
    assert expired == [[Item("apple", Decimal("1.50"))]]
