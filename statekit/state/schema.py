"""Validated values: a variable's ``schema=``, a type expression compiled to a checker.

Supported: the JSON scalars, the codec's datetime, date, time, timedelta, Decimal and UUID,
``Enum`` subclasses, ``Literal[...]``, ``list[T]``, ``dict[str, T]``, ``tuple[A, B]`` and
``tuple[T, ...]``, unions (``T | None``), dataclasses (nested, recursive), TypedDicts (total
or not) and pydantic models, checked by pydantic's own validation.

A write stores the plain form (what :meth:`Node.dump` returns: dicts, lists and the codec's
types); a read turns it back into the schema's type (:meth:`Node.load`). Errors are
:class:`StateTypeError`, as ``cart[2].price: expected Decimal, got str``.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import sys
import types
import typing
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from statekit.codec import child_path
from statekit.exceptions import StateTypeError
from statekit.state.schema_nodes import (
    SCALARS,
    AnyNode,
    DictNode,
    EnumNode,
    ListNode,
    LiteralNode,
    Node,
    TupleNode,
    UnionNode,
    describe,
    mismatch,
    nested,
    shown,
)

__all__ = ["Node", "compile_schema", "declare"]


class Record(Node):
    """A dataclass or a TypedDict: named fields, each (node, required)."""

    def __init__(self, cls: Any) -> None:
        self.cls, self.label = cls, cls.__name__
        self.fields: dict[str, tuple[Node, bool]] = {}

    def _values(self, data: Any, path: str, convert: str, extra_ok: bool) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise mismatch(path, self.label, data)
        for key in data:
            if key not in self.fields and not extra_ok:
                raise StateTypeError(f"{path}: {self.label} has no field {shown(key)}", path)
        for key, (_, required) in self.fields.items():
            if required and key not in data:
                where = child_path(path, key)
                raise StateTypeError(f"{where}: missing (a field of {self.label})", where)
        with nested(path):
            return {
                key: getattr(node, convert)(data[key], child_path(path, key))
                for key, (node, _) in self.fields.items()
                if key in data
            }


class DataclassNode(Record):
    """Stored as a dict of its init fields; read back by calling the class."""

    def dump(self, value: Any, path: str) -> Any:
        if isinstance(value, self.cls):
            value = {key: getattr(value, key) for key in self.fields}
        return self._values(value, path, "dump", extra_ok=False)

    def load(self, data: Any, path: str) -> Any:
        # Stored keys that are no longer fields (a field removed since) are left out.
        kwargs = self._values(data, path, "load", extra_ok=True)
        try:
            return self.cls(**kwargs)
        except Exception as exc:  # its __init__ or __post_init__ refused the value
            raise StateTypeError(f"{path}: {self.label}() refused it: {exc}", path) from None


class TypedDictNode(Record):
    def dump(self, value: Any, path: str) -> Any:
        return self._values(value, path, "dump", extra_ok=False)

    def load(self, data: Any, path: str) -> Any:
        return self._values(data, path, "load", extra_ok=True)


class ModelNode(Node):
    """A pydantic model, validated by pydantic and stored as its JSON-mode dump (by alias,
    without computed fields), read back in JSON mode (so a strict model reads back). A write
    validates the model (an instance in Python mode, as before; the plain form in JSON mode,
    as a read does) and reads its dump back once: one whose fields would not read back equal
    (a ``SecretStr``, which dumps masked; a field excluded from dumps) is refused."""

    def __init__(self, cls: Any, pydantic: Any) -> None:
        version = tuple(int(part) for part in pydantic.VERSION.split(".")[:2])
        if version < (2, 12):  # exclude_computed_fields
            raise TypeError(f"pydantic models need pydantic 2.12 or later, not {pydantic.VERSION}")
        from pydantic_core import to_json  # pydantic's own

        self.cls, self.errors, self.label = cls, pydantic.ValidationError, cls.__name__
        self.to_json = to_json

    def _refused(self, path: str, exc: Exception) -> StateTypeError:
        if isinstance(exc, self.errors):
            first = exc.errors()[0]
            where = path
            for part in first["loc"]:
                where = child_path(where, part)
            got = describe(first.get("input"))
            return StateTypeError(f"{where}: {first['msg']}, got {got}", where)
        # A validator or serializer raising something else than pydantic's errors.
        reason = " ".join(str(exc).split())[:120]
        kind = type(exc).__name__
        return StateTypeError(f"{path}: {self.label} refused it ({kind}: {reason})", path)

    @staticmethod
    def _fields(model: Any) -> Any:
        """What a model holds, as compared after the round trip: its fields in Python mode
        (a SecretStr compares its secret), not its private attributes."""
        return model.model_dump(exclude_computed_fields=True, warnings=False)

    def dump(self, value: Any, path: str) -> Any:
        try:
            if isinstance(value, self.cls):  # validated again (assignments are not, by
                # default), in Python mode: an int assigned to a Decimal field is converted
                fields = value.model_dump(
                    by_alias=True, exclude_computed_fields=True, warnings=False
                )
                model = self.cls.model_validate(fields)
            else:  # the plain form, as a read gets it back: in JSON mode (a strict model too)
                model = self.cls.model_validate_json(self.to_json(value))
            stored = model.model_dump(
                mode="json", by_alias=True, exclude_computed_fields=True, warnings="error"
            )
            again = self.cls.model_validate_json(self.to_json(stored))
        except Exception as exc:
            raise self._refused(path, exc) from None
        if self._fields(again) != self._fields(model):
            raise StateTypeError(
                f"{path}: this {self.label} would not read back as it is (a SecretStr, which "
                "dumps masked, a field excluded from dumps, or an alias that differs between "
                "dump and validation?)",
                path,
            )
        return stored

    def load(self, data: Any, path: str) -> Any:
        try:
            return self.cls.model_validate_json(self.to_json(data))
        except Exception as exc:
            raise self._refused(path, exc) from None


def _required(tp: Any, key: str) -> bool:
    """Whether ``key`` of TypedDict ``tp`` is required (Python 3.11's ``__required_keys__``
    misses ``NotRequired`` in string annotations)."""
    origin = typing.get_origin(typing.get_type_hints(tp, include_extras=True)[key])
    if origin in (typing.Required, typing.NotRequired):
        return origin is typing.Required
    return key in tp.__required_keys__


def _record(tp: Any, memo: dict[Any, Node]) -> Node | None:
    """The node of a dataclass, TypedDict or pydantic model; None for anything else."""
    pydantic = sys.modules.get("pydantic")  # a model's class means pydantic is imported
    if pydantic is not None and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return ModelNode(tp, pydantic)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        stored = {f.name for f in dataclasses.fields(tp) if f.init}
        for key, param in inspect.signature(tp).parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if key not in stored and param.default is param.empty:  # an InitVar
                raise TypeError(
                    f"{tp.__name__}() requires {key!r}, which is not a field: it is not stored, "
                    "so a stored value could not be read back (give it a default)"
                )
        node: Record = DataclassNode(tp)
        fields = [
            (f.name, f.default is f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(tp)
            if f.init
        ]
    elif typing.is_typeddict(tp):
        node = TypedDictNode(tp)
        fields = [(key, _required(tp, key)) for key in typing.get_type_hints(tp)]
    else:
        return None
    memo[tp] = node  # before the fields: a record may hold itself (a tree)
    hints = typing.get_type_hints(tp, include_extras=True)
    node.fields = {key: (compile_schema(hints[key], memo), req) for key, req in fields}
    return node


_ALIAS = getattr(typing, "TypeAliasType", ())  # Python 3.12's `type X = ...`


def compile_schema(tp: Any, memo: dict[Any, Node] | None = None) -> Node:
    """The node checking type expression ``tp``; TypeError for what statekit cannot check."""
    memo = {} if memo is None else memo
    if tp is Any or tp is object:
        return AnyNode()
    if isinstance(tp, typing.NewType):
        return compile_schema(tp.__supertype__, memo)
    if _ALIAS and isinstance(tp, _ALIAS):
        return compile_schema(tp.__value__, memo)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Annotated, typing.Required, typing.NotRequired):
        return compile_schema(args[0], memo)
    if origin in (typing.Union, types.UnionType):
        return UnionNode([compile_schema(a, memo) for a in args])
    if origin is typing.Literal:
        return LiteralNode(args)
    if tp is list or tp is dict or tp is tuple:
        return compile_schema({list: list[Any], dict: dict[str, Any], tuple: tuple[Any, ...]}[tp])
    if origin is list and len(args) == 1:
        return ListNode(compile_schema(args[0], memo))
    if origin is dict and len(args) == 2:
        if args[0] is not str:
            raise TypeError(f"the keys of a stored dict are str, not {args[0]!r}")
        return DictNode(compile_schema(args[1], memo))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return ListNode(compile_schema(args[0], memo), out=tuple)
        return TupleNode([compile_schema(a, memo) for a in args if a != ()])
    if tp is None or tp in SCALARS:
        return SCALARS[type(None) if tp is None else tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return EnumNode(tp)
    if tp in memo:
        return memo[tp]
    record = _record(tp, memo)
    if record is None:
        raise TypeError(f"{tp!r} is not a type statekit can check")
    return record


def declare(tp: Any, name: str) -> Node:
    """The schema of variable ``name``, or ImproperlyConfigured saying why it cannot be."""
    try:
        return compile_schema(tp)
    except (TypeError, NameError) as exc:
        raise ImproperlyConfigured(
            f"The schema of {name!r} ({tp!r}) is not supported: {exc}. Use dataclasses, "
            "TypedDicts, pydantic models, Enum, Literal, list[T], dict[str, T], tuple[...], "
            "unions and the types a value may hold (JSON, datetime, date, time, timedelta, "
            "Decimal, UUID)."
        ) from None
