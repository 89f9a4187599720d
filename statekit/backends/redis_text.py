"""Reading what Redis returns under statekit's prefix as text, when something other than
statekit may have written there.

Redis keys and values are bytes; statekit writes UTF-8 only. A key or value that is not
UTF-8 was written by something else: a listing, an export, the admin and the cleanup skip
it (never crash on it) and log how many they skipped, once per operation, at WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from statekit.keys import StateKey

logger = logging.getLogger("statekit")


class Undecodable:
    """What one operation skips: ``with Undecodable(prefix, "a listing", parse) as bad:``
    (``parse``: a key's text to its StateKey, or None when it is not a value's key); the
    count is logged when the block ends."""

    def __init__(
        self, prefix: str, operation: str, parse: Callable[[str], StateKey | None]
    ) -> None:
        self.prefix, self.operation, self.parse = prefix, operation, parse
        self.count = 0

    def __enter__(self) -> Undecodable:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.count:
            logger.warning(
                "statekit: %s skipped %d Redis key(s) or value(s) under %r that are not "
                "UTF-8: something other than statekit wrote them.",
                self.operation,
                self.count,
                self.prefix,
            )

    def text(self, raw: bytes | str) -> str | None:
        """``raw`` as text; None (counted) if it is not UTF-8."""
        if isinstance(raw, str):
            return raw
        try:
            return raw.decode()
        except UnicodeDecodeError:
            self.count += 1
            return None

    def key(self, raw: bytes | str) -> StateKey | None:
        """The key of a value; None for other keys and those not UTF-8 (counted)."""
        text = self.text(raw)
        return None if text is None else self.parse(text)

    def keys(self, names: list[bytes | str]) -> dict[bytes | str, StateKey]:
        """The keys of values among Redis key names, by name."""
        keys = {raw: self.key(raw) for raw in names}
        return {raw: key for raw, key in keys.items() if key is not None}

    def pairs(self, flat: list[bytes | str]) -> list[tuple[StateKey, str]]:
        """The (key, value) pairs of a script's flat reply ``[key, value, ...]``."""
        pairs = []
        for raw, value in zip(flat[::2], flat[1::2], strict=True):
            key, text = self.key(raw), self.text(value)
            if key is not None and text is not None:
                pairs.append((key, text))
        return pairs
