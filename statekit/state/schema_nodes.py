"""The nodes of a compiled schema (see :mod:`statekit.state.schema`): scalars, containers, unions.

Each node checks a value (``dump``: the typed value or its plain stored form, to that plain
form) and converts what the codec decoded back (``load``), raising ``path: expected X, got Y``.
"""

from __future__ import annotations

import datetime
import enum
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from statekit.codec import MAX_DEPTH, child_path
from statekit.exceptions import StateTypeError

_nesting = threading.local()


def describe(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def shown(key: Any, limit: int = 40) -> str:
    """``repr(key)`` for an error message, cut to ``limit`` characters."""
    text = repr(key)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


@contextmanager
def nested(path: str) -> Iterator[None]:
    """One level of containers deeper: over the codec's ``MAX_DEPTH`` (a value that holds
    itself is endless) is a StateTypeError, not a RecursionError."""
    depth = getattr(_nesting, "depth", 0)
    if depth >= MAX_DEPTH:
        raise StateTypeError(
            f"{path} is nested over {MAX_DEPTH} levels deep (or contains itself).", path
        )
    _nesting.depth = depth + 1
    try:
        yield
    finally:
        _nesting.depth = depth


def mismatch(path: str, expected: str, value: Any) -> StateTypeError:
    return StateTypeError(f"{path}: expected {expected}, got {describe(value)}", path)


class Node:
    """One type of a schema: ``label`` names it in errors."""

    label = "?"

    def dump(self, value: Any, path: str) -> Any:
        raise NotImplementedError("subclasses of Node must provide a dump() method")

    def load(self, data: Any, path: str) -> Any:
        raise NotImplementedError("subclasses of Node must provide a load() method")


class AnyNode(Node):
    label = "Any"

    def dump(self, value: Any, path: str) -> Any:
        return value  # the codec checks it

    def load(self, data: Any, path: str) -> Any:
        return data


class Scalar(Node):
    """A scalar: ``accepts(value)`` says whether it fits, ``make`` converts what fits."""

    def __init__(
        self, label: str, accepts: Callable[[Any], bool], make: Callable[[Any], Any] = lambda v: v
    ) -> None:
        self.label, self.accepts, self.make = label, accepts, make

    def dump(self, value: Any, path: str) -> Any:
        if not self.accepts(value):
            raise mismatch(path, self.label, value)
        try:
            return self.make(value)
        except OverflowError:  # float(10**400)
            raise StateTypeError(f"{path}: too large for a {self.label}", path) from None

    def load(self, data: Any, path: str) -> Any:
        return self.dump(data, path)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _instance(*kinds: type, exclude: type | None = None) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, kinds) and not (exclude and isinstance(v, exclude))


SCALARS: dict[Any, Scalar] = {
    type(None): Scalar("None", lambda v: v is None),
    bool: Scalar("bool", lambda v: isinstance(v, bool)),
    int: Scalar("int", _integer),
    float: Scalar("float", lambda v: isinstance(v, float) or _integer(v), float),
    str: Scalar("str", _instance(str)),
    Decimal: Scalar("Decimal", lambda v: isinstance(v, Decimal) or _integer(v), Decimal),
    datetime.datetime: Scalar("datetime", _instance(datetime.datetime)),
    datetime.date: Scalar("date", _instance(datetime.date, exclude=datetime.datetime)),
    datetime.time: Scalar("time", _instance(datetime.time)),
    datetime.timedelta: Scalar("timedelta", _instance(datetime.timedelta)),
    uuid.UUID: Scalar("UUID", _instance(uuid.UUID)),
}


class EnumNode(Node):
    """An Enum: stored as the member's value, read back as the member."""

    def __init__(self, cls: type[enum.Enum]) -> None:
        for member in cls:
            if member.value is not None and type(member.value) not in (str, int, float, bool):
                raise TypeError(
                    f"the values of {cls.__name__} must be str, int, float, bool or None to be "
                    f"stored and read back, not {member.value!r}"
                )
        self.cls, self.label = cls, cls.__name__

    def load(self, data: Any, path: str) -> Any:
        try:
            member = self.cls(data)
        except Exception:  # ValueError, or whatever its _missing_ raises
            raise mismatch(path, self.label, data) from None
        if type(member.value) is not type(data):  # True is not 1
            raise mismatch(path, self.label, data)
        return member

    def dump(self, value: Any, path: str) -> Any:
        if isinstance(value, self.cls):
            return value.value
        return self.load(value, path).value


class LiteralNode(Node):
    def __init__(self, values: tuple[Any, ...]) -> None:
        for v in values:
            if v is not None and type(v) not in (str, int, bool):
                raise TypeError(f"Literal values must be str, int, bool or None, not {v!r}")
        self.values = values
        self.label = f"Literal[{', '.join(map(repr, values))}]"

    def dump(self, value: Any, path: str) -> Any:
        for v in self.values:  # a str subclass (mark_safe) is its str; True is not 1
            kind = type(value) is type(v) or (type(v) is str and isinstance(value, str))
            if kind and value == v:
                return v
        raise mismatch(path, self.label, value)  # not the value: it may be a secret

    def load(self, data: Any, path: str) -> Any:
        return self.dump(data, path)


class ListNode(Node):
    def __init__(
        self,
        item: Node,
        kinds: tuple[type[Iterable[Any]], ...] = (list, tuple),
        out: type[list[Any] | tuple[Any, ...]] = list,
    ) -> None:
        self.item, self.kinds, self.out = item, kinds, out
        self.label = f"{out.__name__}[{item.label}{', ...' if out is tuple else ''}]"

    def _each(self, value: Any, path: str, convert: str) -> Any:
        if not isinstance(value, self.kinds):
            raise mismatch(path, self.label, value)
        method = getattr(self.item, convert)
        with nested(path):
            items = [method(item, child_path(path, i)) for i, item in enumerate(value)]
        return items if self.out is list else self.out(items)

    def dump(self, value: Any, path: str) -> Any:
        return list(self._each(value, path, "dump"))

    def load(self, data: Any, path: str) -> Any:
        return self._each(data, path, "load")


class TupleNode(Node):
    def __init__(self, items: list[Node]) -> None:
        self.items = items
        self.label = f"tuple[{', '.join(n.label for n in items) or '()'}]"

    def _each(self, value: Any, path: str, convert: str) -> list[Any]:
        if not isinstance(value, list | tuple) or len(value) != len(self.items):
            raise mismatch(path, self.label, value)
        with nested(path):
            return [
                getattr(node, convert)(item, child_path(path, i))
                for i, (node, item) in enumerate(zip(self.items, value, strict=True))
            ]

    def dump(self, value: Any, path: str) -> Any:
        return self._each(value, path, "dump")

    def load(self, data: Any, path: str) -> Any:
        return tuple(self._each(data, path, "load"))


class DictNode(Node):
    def __init__(self, item: Node) -> None:
        self.item, self.label = item, f"dict[str, {item.label}]"

    def _each(self, value: Any, path: str, convert: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise mismatch(path, self.label, value)
        method = getattr(self.item, convert)
        out = {}
        with nested(path):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise mismatch(f"{path} key {shown(key)}", "str", key)
                out[key] = method(item, child_path(path, key))
        return out

    def dump(self, value: Any, path: str) -> Any:
        return self._each(value, path, "dump")

    def load(self, data: Any, path: str) -> Any:
        return self._each(data, path, "load")


class UnionNode(Node):
    """The first member that fits; with one member besides None, its own error."""

    def __init__(self, members: list[Node]) -> None:
        self.members = members
        self.label = " | ".join(m.label for m in members)
        others = [m for m in members if m is not SCALARS[type(None)]]
        self.only = others[0] if len(others) == 1 else None

    def _first(self, value: Any, path: str, convert: str) -> Any:
        if self.only is not None and value is not None:
            return getattr(self.only, convert)(value, path)
        for member in self.members:
            try:
                return getattr(member, convert)(value, path)
            except StateTypeError:
                continue
        raise mismatch(path, self.label, value)

    def dump(self, value: Any, path: str) -> Any:
        return self._first(value, path, "dump")

    def load(self, data: Any, path: str) -> Any:
        return self._first(data, path, "load")
