"""schema= at its edges: what a write accepts reads back, every surface checks the schema
(admin, ``statekit set``/``import``), and hostile values get a StateTypeError that names the
path, never another exception, and never the value itself."""

from __future__ import annotations

import datetime
import io
import json
from decimal import Decimal
from typing import Literal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.utils.safestring import mark_safe

from statekit import GlobalState, StateTypeError
from statekit.backends import StateKey
from tests.schema_types import (
    Aliased,
    Branch,
    Computed,
    Pair,
    Picky,
    Positive,
    Priced,
    Scaled,
    Secret,
    Strict,
    Tokened,
)
from tests.test_admin import change_url, superuser  # noqa: F401 (a fixture)


def stored(backend, name: str) -> str | None:
    return backend.get(StateKey("global", "", name))


def test_a_plain_form_the_class_refuses_is_refused_by_the_write(backend, name):
    price = GlobalState(name, default=lambda: Positive(Decimal(1)), schema=Positive)
    with pytest.raises(StateTypeError, match=r"Positive\(\) refused it: price must not be"):
        price.set({"price": Decimal(-5)})  # type: ignore[arg-type]
    assert stored(backend, name) is None and price.get() == Positive(Decimal(1))
    with pytest.raises(StateTypeError, match="refused it"):
        price.update(lambda p: {"price": Decimal(-1)})  # type: ignore[arg-type,return-value]
    assert stored(backend, name) is None


def test_the_admin_shows_a_schema_mismatch_as_a_form_error(backend, name, superuser):  # noqa: F811
    counter = GlobalState(name, default=0, schema=int)
    counter.set(1)
    response = superuser.post(change_url(StateKey("global", "", name)), {"value": '"two"'})
    assert response.status_code == 200
    assert f"{name}: expected int, got str" in response.content.decode()
    assert counter.get() == 1


def test_statekit_import_checks_the_schema_before_writing_any_line(backend, name, tmp_path):
    counter = GlobalState(name, default=0, schema=int)
    other = GlobalState(name + "b", default=0, schema=int)
    line = {"scope": "global", "owner": "", "name": name + "b", "value": "5", "expires_at": None}
    bad = {**line, "name": name, "value": '"not an int"'}
    path = tmp_path / "lines.jsonl"
    path.write_text(f"{json.dumps(line)}\n{json.dumps(bad)}\n")
    out = io.StringIO()
    with pytest.raises(CommandError, match=rf"line 2: {name}: expected int, got str"):
        call_command("statekit", "import", str(path), "--dry-run", stdout=out)
    with pytest.raises(CommandError, match="nothing was written"):
        call_command("statekit", "import", str(path), stdout=out)
    assert other.get() == 0 and counter.get() == 0
    with pytest.raises(CommandError, match="expected int, got str"):
        call_command("statekit", "set", name, '"x"', stdout=out)


def test_values_deeper_than_the_codec_allows_or_holding_themselves(backend, name):
    tree = GlobalState(name, default=Branch, schema=Branch)
    deep = Branch()
    for _ in range(10_000):
        deep = Branch([deep])
    with pytest.raises(StateTypeError, match="nested over 256 levels deep"):
        tree.set(deep)
    loop = Branch()
    loop.children.append(loop)
    with pytest.raises(StateTypeError, match="or contains itself"):
        tree.set(loop)
    fine = Branch()
    for _ in range(100):
        fine = Branch([fine])
    tree.set(fine)
    assert tree.get() == fine


def test_numbers_too_large_for_a_float(backend, name):
    ratio = GlobalState(name, default=0.0, schema=float)
    with pytest.raises(StateTypeError, match=f"{name}: too large for a float"):
        ratio.set(10**400)
    with pytest.raises(StateTypeError, match="int too large to convert to float"):
        ratio.incr(10**400)
    ratio.set(10**300)
    assert ratio.get() == 1e300


def test_declarations_whose_values_could_not_be_read_back(name):
    with pytest.raises(ImproperlyConfigured, match="requires 'factor', which is not a field"):
        GlobalState(name, default=None, schema=Scaled | None)
    with pytest.raises(ImproperlyConfigured, match=r"must be str, int, float, bool or None"):
        GlobalState(name + "e", default=Pair.ONE, schema=Pair)


def test_literal_errors_do_not_show_the_value_and_accept_str_subclasses(name):
    kind = GlobalState(name, default="a", schema=Literal["a", "b"])
    with pytest.raises(StateTypeError) as error:
        kind.plain("sk_live_secret_token")
    assert "sk_live" not in str(error.value) and "got str" in str(error.value)
    assert kind.plain(mark_safe("b")) == "b" and type(kind.plain(mark_safe("b"))) is str


def test_error_messages_are_bounded_for_huge_keys(name):
    prices = GlobalState(name, default=dict, schema=dict[str, Positive])
    with pytest.raises(StateTypeError) as error:
        prices.plain({"k" * 1_000_000: {"price": "x"}})
    assert len(str(error.value)) < 300


# -- pydantic -----------------------------------------------------------------------------


def test_pydantic_aliases_round_trip(backend, name):
    user = GlobalState(name, default=lambda: Aliased(userId=1), schema=Aliased)
    user.set(Aliased(userId=5))
    assert user.get() == Aliased(userId=5)
    user.set({"userId": 6})  # type: ignore[arg-type]
    assert user.get().user_id == 6 and json.loads(stored(backend, name) or "") == {"userId": 6}


def test_a_strict_pydantic_model_reads_back(backend, name):
    when = datetime.datetime(2026, 12, 1, 12, tzinfo=datetime.UTC)
    strict = Strict(when=when, price=Decimal("1.50"))
    deal = GlobalState(name, default=lambda: strict, schema=Strict)
    deal.set(strict)
    assert deal.get() == strict


def test_a_pydantic_value_that_would_not_read_back_is_refused(backend, name):
    # A SecretStr dumps masked: stored, the secret would be lost.
    with pytest.raises(ImproperlyConfigured, match="would not read back as it is"):
        GlobalState(name, default=lambda: Secret(token="-"), schema=Secret)  # type: ignore[arg-type]
    secret = GlobalState(name + "n", default=None, schema=Secret | None)
    with pytest.raises(StateTypeError, match="would not read back as it is"):
        secret.set(Secret(token="hunter2"))  # type: ignore[arg-type]
    assert stored(backend, name + "n") is None


def test_pydantic_computed_fields_are_not_stored(backend, name):
    computed = GlobalState(name, default=lambda: Computed(x=1), schema=Computed)
    computed.set(Computed(x=4))
    assert computed.get().double == 8 and json.loads(stored(backend, name) or "") == {"x": 4}


def test_a_pydantic_validator_raising_another_error_is_a_state_type_error(backend, name):
    picky = GlobalState(name, default=lambda: Picky(x=1), schema=Picky)
    with pytest.raises(StateTypeError, match=r"Picky refused it \(TypeError: not 13\)"):
        picky.set({"x": 13})  # type: ignore[arg-type]
    assert stored(backend, name) is None


def test_pydantic_before_2_12_is_refused_at_the_declaration():
    import pydantic

    from statekit.state.schema import ModelNode

    older = type("pydantic", (), {"VERSION": "2.11.9", "ValidationError": ValueError})
    with pytest.raises(TypeError, match=r"need pydantic 2\.12 or later, not 2\.11\.9"):
        ModelNode(Picky, older)
    assert ModelNode(Picky, pydantic).cls is Picky


def test_ordinary_pydantic_models_are_written_as_before(backend, name):
    """Private attributes are not stored (nor compared); a value assigned to an instance is
    converted as pydantic converts it (an int to a Decimal field, a list to a set)."""
    tokened = GlobalState(name, default=lambda: Tokened(x=1), schema=Tokened)
    tokened.set(Tokened(x=2))
    assert tokened.get().x == 2
    priced = GlobalState(name + "p", default=lambda: Priced(price=Decimal(1)), schema=Priced)
    edited = Priced(price=Decimal(1))
    edited.price = 2  # type: ignore[assignment]
    edited.tags = ["a", "a"]  # type: ignore[assignment]
    priced.set(edited)
    assert priced.get() == Priced(price=Decimal(2), tags={"a"})
