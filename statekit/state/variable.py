"""What every declared variable shares: name, default, ttl, encoding, change notification,
and the operations on a stored key. The scopes (:mod:`statekit.state.scopes`) say whose key.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured

from statekit import registry
from statekit.backends import get_backend
from statekit.codec import decode, dumps, encode
from statekit.keys import MAX_TTL, StateKey
from statekit.signals import state_changed, variable_declared

NAME = re.compile(r"[\w.:-]{1,200}")

Number = int | float | Decimal


def positive_seconds(value: float | timedelta | None, what: str) -> float | None:
    """``value`` (seconds or a timedelta, or None) as float seconds; ``what`` names it."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 < seconds <= MAX_TTL
    ):
        raise ImproperlyConfigured(
            f"{what} must be a positive number of seconds (at most {MAX_TTL}, 100 years) "
            f"or a timedelta, not {value!r}."
        )
    return float(seconds)


def _caller_module() -> str:
    """The module that declared a variable: the first caller outside statekit."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("statekit."):
        frame = frame.f_back
    return frame.f_globals.get("__name__", "?")


def _qualname(fn: Callable | None) -> str | None:
    if fn is None:
        return None
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', fn)}"


class Variable:
    """What the scopes share: name, default, ttl, encoding and change notification."""

    scope: ClassVar[str]

    def __init__(
        self, name: str, *, default: Any = None, ttl: float | timedelta | None = None
    ) -> None:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ImproperlyConfigured(
                f"{type(self).__name__} name {name!r} is invalid: use 1 to 200 letters, "
                "digits, '_', '.', ':' or '-'."
            )
        self.name = name
        self.ttl = positive_seconds(ttl, f"ttl of {name!r}")
        self._factory: Callable[[], Any] | None = default if callable(default) else None
        self._default_text = None if callable(default) else dumps(default, name)
        self.declared_in = _caller_module()
        self._register()

    def _signature(self) -> tuple[Any, ...]:
        return (type(self), self._default_text or _qualname(self._factory), self.ttl)

    def _register(self) -> None:
        first = registry.register(self)
        # The same declaration again (a module imported twice) is the same variable: the
        # first one is the sender of every signal, whichever copy wrote.
        self.sender: Variable = first
        if first is self:
            variable_declared.send(sender=self)
        elif first._signature() != self._signature():
            raise ImproperlyConfigured(
                f"{self.scope} state {self.name!r} is declared twice with different "
                f"definitions: {first!r} in {first.declared_in} and {self!r} in "
                f"{self.declared_in}. Give one of them another name."
            )

    def __repr__(self) -> str:
        default = self._factory or decode(self._default_text or "null")
        ttl = "" if self.ttl is None else f", ttl={self.ttl:g}"
        return f"{type(self).__name__}({self.name!r}, default={default!r}{ttl})"

    # -- values --------------------------------------------------------------------------

    def default(self) -> Any:
        """A fresh default value: the factory's result, or a deep copy of the default."""
        if self._factory is not None:
            return self._factory()
        return decode(self._default_text or "null")

    def _default_json(self) -> str:
        if self._factory is not None:
            return encode(self._factory(), self.name)
        return self._default_text or "null"

    def _read(self, text: str | None) -> Any:
        return self.default() if text is None else decode(text)

    def _updater(self, fn: Callable[[Any], Any]) -> Callable[[str | None], str]:
        return lambda old: encode(fn(self._read(old)), self.name)

    # -- notification ----------------------------------------------------------------------

    def on_change(self, receiver: Callable[[str | None, Any, Any], None]) -> Callable:
        """Decorator: call ``receiver(owner, old, new)`` after each write that changed the
        stored content (after the commit, when a transaction is open), like ``state_changed``.
        """

        def relay(sender: Variable, *, owner: str | None, old: Any, new: Any, **kwargs: Any):
            receiver(owner, old, new)

        state_changed.connect(
            relay, sender=self.sender, weak=False, dispatch_uid=(id(self.sender), receiver)
        )
        return receiver

    def _change(self, key: StateKey, old: str | None, new: str | None) -> dict[str, Any] | None:
        """The signal kwargs for a write from ``old`` to ``new``, None if nothing changed."""
        if old == new or not state_changed.has_listeners(self.sender):
            return None
        return {
            "scope": key.scope,
            "name": self.name,
            "owner": key.owner or None,
            "old": None if old is None else decode(old),
            "new": None if new is None else decode(new),
        }

    def _notify(self, key: StateKey, old: str | None, new: str | None) -> None:
        change = self._change(key, old, new)
        if change is not None:
            get_backend().after_write(lambda: state_changed.send(sender=self.sender, **change))

    async def _anotify(self, key: StateKey, old: str | None, new: str | None) -> None:
        change = self._change(key, old, new)
        if change is not None:
            await state_changed.asend(sender=self.sender, **change)

    # -- operations on a key -------------------------------------------------------------

    def _get(self, key: StateKey) -> Any:
        return self._read(get_backend().get(key, self.ttl))

    def _set(self, key: StateKey, value: Any) -> None:
        text = encode(value, self.name)
        self._notify(key, get_backend().set(key, text, self.ttl), text)

    def _update(self, key: StateKey, fn: Callable[[Any], Any]) -> Any:
        old, new = get_backend().update(key, self._updater(fn), self.ttl)
        self._notify(key, old, new)
        return decode(new)

    def _incr(self, key: StateKey, amount: Number) -> Any:
        default = self._default_json()
        old, new = get_backend().incr(key, amount, default, self.ttl)
        self._notify(key, default if old is None else old, new)  # old: what get() gave
        return decode(new)

    def _delete(self, key: StateKey) -> None:
        self._notify(key, get_backend().delete(key), None)

    async def _aget(self, key: StateKey) -> Any:
        return self._read(await get_backend().aget(key, self.ttl))

    async def _aset(self, key: StateKey, value: Any) -> None:
        text = encode(value, self.name)
        await self._anotify(key, await get_backend().aset(key, text, self.ttl), text)

    async def _aupdate(self, key: StateKey, fn: Callable[[Any], Any]) -> Any:
        old, new = await get_backend().aupdate(key, self._updater(fn), self.ttl)
        await self._anotify(key, old, new)
        return decode(new)

    async def _aincr(self, key: StateKey, amount: Number) -> Any:
        default = self._default_json()
        old, new = await get_backend().aincr(key, amount, default, self.ttl)
        await self._anotify(key, default if old is None else old, new)
        return decode(new)

    async def _adelete(self, key: StateKey) -> None:
        await self._anotify(key, await get_backend().adelete(key), None)
