"""JSON encoding of state values.

Values are JSON plus the types of Django's ``DjangoJSONEncoder`` (datetime, date, time,
timedelta, Decimal, UUID), which come back as the same types. They are tagged in the stored
JSON as ``{"__sk__": "<type>", "v": ...}``; a user dict that happens to hold a ``"__sk__"``
key is stored as ``{"__sk__": "dict", "v": [[key, value], ...]}`` so decoding is never
ambiguous.

Never pickle: anything else raises :class:`StateTypeError` naming the offending path.
"""

from __future__ import annotations

import datetime
import json
import math
import uuid
from decimal import Decimal
from typing import Any

from statekit.conf import get_settings
from statekit.exceptions import StateTypeError, ValueTooLarge

TAG = "__sk__"

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

_DECODERS: dict[str, Any] = {
    "datetime": datetime.datetime.fromisoformat,
    "date": datetime.date.fromisoformat,
    "time": datetime.time.fromisoformat,
    "timedelta": lambda v: datetime.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "decimal": Decimal,
    "uuid": uuid.UUID,
    "dict": dict,
}


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{key!r}]"


def _tree(value: Any, path: str, seen: set[int]) -> Any:
    """Return a JSON-ready copy of ``value``; raise StateTypeError naming ``path``."""
    # Subclasses of str and int (SafeString, IntEnum...) are stored as their base type.
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StateTypeError(f"{path} is {value!r}, which JSON cannot store.", path)
        return value
    kind = type(value)
    if kind in (list, tuple, dict):
        if id(value) in seen:
            raise StateTypeError(f"{path} contains itself (a circular reference).", path)
        seen.add(id(value))
        try:
            if kind is dict:
                out = {}
                for key, item in value.items():
                    if type(key) is not str:
                        raise StateTypeError(
                            f"{path} has the key {key!r} of type {type(key).__name__}; "
                            "keys of stored dicts must be str.",
                            path,
                        )
                    out[key] = _tree(item, _child(path, key), seen)
                return {TAG: "dict", "v": [list(kv) for kv in out.items()]} if TAG in out else out
            return [_tree(item, _child(path, i), seen) for i, item in enumerate(value)]
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


def _hook(obj: dict[str, Any]) -> Any:
    tag = obj.get(TAG)
    if tag is None:
        return obj
    return _DECODERS[tag](obj["v"])


_DECODER = json.JSONDecoder(object_hook=_hook)


def decode(text: str) -> Any:
    """Decode JSON text written by :func:`encode`."""
    return _DECODER.decode(text)
