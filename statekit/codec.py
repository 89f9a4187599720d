"""JSON encoding of state values.

Values are JSON plus the types of Django's ``DjangoJSONEncoder`` (datetime, date, time,
timedelta, Decimal, UUID), which come back as the same types. They are tagged in the stored
JSON as ``{"__sk__": "<type>", "v": ...}``; a user dict that happens to hold a ``"__sk__"``
key is stored as ``{"__sk__": "dict", "v": [[key, value], ...]}`` so decoding is never
ambiguous.

Never pickle: anything else raises :class:`StateTypeError` naming the offending path, and
so does what JSON or UTF-8 cannot hold: NaN and infinities (float or Decimal), lone
surrogates, integers of more than ``MAX_DIGITS`` digits and nesting deeper than
``MAX_DEPTH``. :func:`decode` reads only what :func:`encode` can write.
"""

from __future__ import annotations

import datetime
import json
import math
import uuid
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from statekit.conf import get_settings
from statekit.exceptions import StateTypeError, ValueTooLarge

TAG = "__sk__"
#: Deepest nesting of lists and dicts in a value (a tagged value counts as one level).
MAX_DEPTH = 256
#: Most digits of an integer (Python's default ``sys.get_int_max_str_digits()``).
MAX_DIGITS = 4300
_INT_LIMIT = 10**MAX_DIGITS

_ENCODERS: dict[type, tuple[str, Any]] = {
    datetime.datetime: ("datetime", datetime.datetime.isoformat),
    datetime.date: ("date", datetime.date.isoformat),
    datetime.time: ("time", datetime.time.isoformat),
    datetime.timedelta: (
        "timedelta",
        lambda d: [d.days, d.seconds, d.microseconds],
    ),
    Decimal: ("decimal", str),
    uuid.UUID: ("uuid", str),
}


def _timedelta(v: list[Any]) -> datetime.timedelta:
    if len(v) != 3 or not all(type(part) is int for part in v):
        raise ValueError("not [days, seconds, microseconds]")
    return datetime.timedelta(days=v[0], seconds=v[1], microseconds=v[2])


def _dict(v: list[Any]) -> dict[str, Any]:
    if not all(type(kv) is list and len(kv) == 2 and type(kv[0]) is str for kv in v):
        raise ValueError("not a list of [key, value] pairs")
    return dict(v)


#: tag: (the JSON type of its "v", the function that makes the value of it)
_DECODERS: dict[str, tuple[type, Any]] = {
    "datetime": (str, datetime.datetime.fromisoformat),
    "date": (str, datetime.date.fromisoformat),
    "time": (str, datetime.time.fromisoformat),
    "timedelta": (list, _timedelta),
    "decimal": (str, Decimal),
    "uuid": (str, uuid.UUID),
    "dict": (list, _dict),
}


def child_path(path: str, key: str | int) -> str:
    """``path`` to the item ``key`` (a key of over 40 characters is cut: paths go into error
    messages)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if len(key) > 40:
        key = f"{key[:39]}…"
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"


def _finite(number: float | Decimal) -> bool:
    return number.is_finite() if isinstance(number, Decimal) else math.isfinite(number)


def _text(text: str, path: str, what: str) -> str:
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as exc:
            raise StateTypeError(
                f"{path} has {what} with a lone surrogate ({text[exc.start]!r} at "
                f"{exc.start}), which UTF-8 cannot store.",
                path,
            ) from None
    return text


def _tree(value: Any, path: str, seen: set[int]) -> Any:
    """Return a JSON-ready copy of ``value``; raise StateTypeError naming ``path``."""
    # Subclasses of str and int (SafeString, IntEnum...) are stored as their base type.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value, path, "a string")
    if isinstance(value, int):
        if -_INT_LIMIT < value < _INT_LIMIT:
            return value
        raise StateTypeError(f"{path} is an integer of over {MAX_DIGITS} digits.", path)
    if isinstance(value, float | Decimal) and not _finite(value):
        raise StateTypeError(f"{path} is {value!r}, which JSON cannot store.", path)
    if isinstance(value, float):
        return value
    kind = type(value)
    if kind in (list, tuple, dict):
        if len(seen) >= MAX_DEPTH:
            raise StateTypeError(f"{path} is nested over {MAX_DEPTH} levels deep.", path)
        if id(value) in seen:
            raise StateTypeError(f"{path} contains itself (a circular reference).", path)
        seen.add(id(value))
        try:
            if kind is dict:
                return _dict_tree(value, path, seen)
            return [_tree(item, child_path(path, i), seen) for i, item in enumerate(value)]
        finally:
            seen.discard(id(value))
    for base in kind.__mro__:
        if base in _ENCODERS:
            tag, to_json = _ENCODERS[base]
            return {TAG: tag, "v": to_json(value)}
    raise StateTypeError(
        f"{path} is a {kind.__module__}.{kind.__qualname__}, which statekit cannot store: "
        "values must be JSON (dict, list, str, int, float, bool, None) or datetime, date, "
        "time, timedelta, Decimal, UUID.",
        path,
    )


def _dict_tree(value: dict[Any, Any], path: str, seen: set[int]) -> Any:
    out = {}
    for key, item in value.items():
        if type(key) is not str:
            raise StateTypeError(
                f"{path} has the key {key!r} of type {type(key).__name__}; "
                "keys of stored dicts must be str.",
                path,
            )
        out[_text(key, path, "a key")] = _tree(item, child_path(path, key), seen)
    return {TAG: "dict", "v": [list(kv) for kv in out.items()]} if TAG in out else out


def dumps(value: Any, name: str) -> str:
    """Encode ``value`` of the variable ``name`` to JSON text (types checked, size not)."""
    return json.dumps(
        _tree(value, name, set()), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def encode(value: Any, name: str) -> str:
    """Encode ``value`` of the variable ``name`` to JSON text, enforcing MAX_VALUE_BYTES."""
    text = dumps(value, name)
    limit = get_settings()["MAX_VALUE_BYTES"]
    size = len(text.encode())
    if size > limit:
        raise ValueTooLarge(
            f"The value of {name!r} is {size} bytes encoded, over the limit of {limit} "
            'bytes (STATEKIT["MAX_VALUE_BYTES"]); nothing was written.'
        )
    return text


def _short(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _hook(obj: dict[str, Any]) -> Any:
    if TAG not in obj:
        return obj
    tag, v = obj[TAG], obj.get("v")
    kind, make = _DECODERS.get(tag, (None, None)) if type(tag) is str else (None, None)
    if make is None or len(obj) != 2 or type(v) is not kind:
        raise ValueError(f"{_short(obj)} is not a tagged value of statekit")
    try:
        return make(v)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"{_short(v)} is not a {tag}: {exc}") from None


_DECODER = json.JSONDecoder(object_hook=_hook)


def decode(text: str) -> Any:
    """Decode JSON text written by :func:`encode`.

    Raise ValueError if ``text`` is not JSON in statekit's encoding (a malformed tagged
    value, an integer too long to read, nesting too deep to read).
    """
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise ValueError(f"nested over {MAX_DEPTH} levels deep") from None


def browser_json(value: Any) -> str:
    """A decoded value as the browser sees it: plain JSON, Decimal, UUID and dates as strings
    (what live pages and event streams receive)."""
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))
