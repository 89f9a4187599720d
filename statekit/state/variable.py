"""What every declared variable shares: name, default, ttl, schema, encoding, change
notification, and the operations on a stored key. The scopes (:mod:`statekit.state.scopes`)
say whose key.
"""

from __future__ import annotations

import re
import sys
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar

from django.core.exceptions import ImproperlyConfigured

from statekit import registry
from statekit.backends import get_backend
from statekit.codec import decode, dumps, encode
from statekit.exceptions import StateTypeError
from statekit.keys import MAX_TTL, Scope, StateKey
from statekit.signals import state_changed, variable_declared
from statekit.state.schema import Node, declare
from statekit.streams.changes import follow, reader
from statekit.streams.feeds import apublish, hub

NAME = re.compile(r"[\w.:-]{1,200}")

Number = int | float | Decimal
T = TypeVar("T")


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
    return str(frame.f_globals.get("__name__", "?"))


#: What a variable's ``default=`` is: the value, a factory of it, or None (no default).
Default: TypeAlias = T | Callable[[], T] | None


def qualname(fn: Callable[..., Any] | None) -> str | None:
    if fn is None:
        return None
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', fn)}"


class Variable(Generic[T]):
    """What the scopes share: name, default, ttl, schema, encoding and change notification.

    ``schema`` (a type expression, see :mod:`statekit.state.schema`): every write is checked
    against it and reads give values of that type.
    """

    scope: ClassVar[str]

    def __init__(
        self,
        name: str,
        *,
        default: Default[T] = None,
        ttl: float | timedelta | None = None,
        schema: Any = None,
    ) -> None:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ImproperlyConfigured(
                f"{type(self).__name__} name {name!r} is invalid: use 1 to 200 letters, "
                "digits, '_', '.', ':' or '-'."
            )
        self.name = name
        self.ttl = positive_seconds(ttl, f"ttl of {name!r}")
        self.schema = schema
        self._schema: Node | None = None if schema is None else declare(schema, name)
        self._factory: Callable[[], Any] | None = default if callable(default) else None
        if self._factory is None:
            self._default_text: str | None = dumps(self._fitting_default(default), name)
        else:
            self._default_text = None
            if self._schema is not None:  # the factory's value must fit too
                self._fitting_default(self._factory())
        self.declared_in = _caller_module()
        self._register()

    def _signature(self) -> tuple[Any, ...]:
        default = self._default_text or qualname(self._factory)
        return (type(self), default, self.ttl, repr(self.schema))

    def _fitting_default(self, default: Any) -> Any:
        """The plain form of ``default``; a default that does not fit the schema is an error
        of the declaration."""
        try:
            return self.plain(default)
        except StateTypeError as exc:
            raise ImproperlyConfigured(
                f"The default of {self.name!r} does not fit its schema: {exc}"
            ) from None

    def _register(self) -> None:
        first = registry.register(self)
        # The same declaration again (a module imported twice) is the same variable: the
        # first one is the sender of every signal, whichever copy wrote.
        self.sender: Variable[T] = first
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
        schema = "" if self.schema is None else f", schema={self.schema!r}"
        return f"{type(self).__name__}({self.name!r}, default={default!r}{ttl}{schema})"

    # -- values --------------------------------------------------------------------------

    def default(self) -> T:
        """A fresh default value: the factory's result, or a deep copy of the default."""
        if self._factory is None:
            return self.typed(decode(self._default_text or "null"))
        value = self._factory()
        return value if self._schema is None else self.typed(self.stored_form(value))

    def _default_json(self) -> str:
        if self._factory is not None:
            return encode(self.plain(self._factory()), self.name)
        return self._default_text or "null"

    def plain(self, value: Any) -> Any:
        """``value`` as stored: checked against the schema (StateTypeError naming the path),
        in plain form, and read back once (what ``__post_init__`` refuses is refused here)."""
        if self._schema is None:
            return value
        try:
            data = self.stored_form(value)
            self._schema.load(data, self.name)
        except RecursionError:  # deep, in a deep stack: the depth checks did not come first
            raise StateTypeError(f"{self.name} is nested too deeply to check.", self.name) from None
        return data

    def stored_form(self, value: Any) -> Any:
        """The plain form of a value that was read (:meth:`plain` checked it when written)."""
        return value if self._schema is None else self._schema.dump(value, self.name)

    def typed(self, data: Any) -> T:
        """A decoded stored value as the schema's type; StateTypeError if it does not fit
        (stored before the schema changed)."""
        if self._schema is None:
            return data  # type: ignore[no-any-return]
        try:
            return self._schema.load(data, self.name)  # type: ignore[no-any-return]
        except RecursionError:
            raise StateTypeError(f"{self.name} is nested too deeply to read.", self.name) from None
        except StateTypeError as exc:
            unfit = f"The stored value of {self.name!r} does not fit its schema ({exc})"
            raise StateTypeError(f"{unfit}: set or delete it.", exc.path) from None

    def _read(self, text: str | None) -> T:
        return self.default() if text is None else self.typed(decode(text))

    def _updater(self, fn: Callable[[T], Any]) -> Callable[[str | None], str]:
        return lambda old: encode(self.plain(fn(self._read(old))), self.name)

    def _adder(self, amount: Number) -> Callable[[Any], Any]:
        """``incr`` of a variable with a schema: an update, so the sum is checked."""

        def add(value: Any) -> Any:
            if any(isinstance(x, bool) or not isinstance(x, Number) for x in (value, amount)):
                raise StateTypeError(
                    f"{self.name}: incr needs numbers, got {type(value).__name__} + "
                    f"{type(amount).__name__}",
                    self.name,
                )
            try:
                return value + amount
            except (TypeError, ArithmeticError) as exc:  # Decimal + float; float + 10**400
                raise StateTypeError(f"{self.name}: incr: {exc}", self.name) from None

        return add

    # -- notification ----------------------------------------------------------------------

    @property
    def streamed(self) -> bool:
        """Whether its changes reach change streams (``changes()``, live pages): session and
        page state, and global state declared ``public=True``. Others publish nothing."""
        return self.scope != Scope.GLOBAL or bool(getattr(self, "public", False))

    def _changes(self, key: StateKey) -> AsyncGenerator[T]:
        if not self.streamed:
            raise ImproperlyConfigured(
                f"changes() of global state {self.name!r}: only public global state publishes "
                "its changes; declare it with public=True (pages may then watch it too)."
            )
        return self._follow(key)

    async def _follow(self, key: StateKey) -> AsyncGenerator[T]:
        async with aclosing(follow(key, reader(get_backend(), key, self.ttl))) as texts:
            async for text in texts:
                yield self._read(text)

    def on_change(
        self, receiver: Callable[[str | None, Any, Any], None]
    ) -> Callable[[str | None, Any, Any], None]:
        """Decorator: call ``receiver(owner, old, new)`` after each write that changed the
        stored content (after the commit, when a transaction is open), like ``state_changed``.
        """

        def relay(
            sender: Variable[T], *, owner: str | None, old: Any, new: Any, **kwargs: Any
        ) -> None:
            receiver(owner, self._relayed(old), self._relayed(new))

        state_changed.connect(
            relay, sender=self.sender, weak=False, dispatch_uid=(id(self.sender), receiver)
        )
        return receiver

    def _relayed(self, data: Any) -> Any:
        """A value of a change for ``on_change``: typed (None: none, or an old one that does
        not fit the schema)."""
        try:
            return None if data is None else self.typed(data)
        except StateTypeError:
            return None

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
        if old != new and self.streamed:
            publish = hub().publish
            get_backend().after_write(lambda: publish(key, new))
        change = self._change(key, old, new)
        if change is not None:

            def send() -> None:
                state_changed.send(sender=self.sender, **change)

            get_backend().after_write(send)

    async def _anotify(self, key: StateKey, old: str | None, new: str | None) -> None:
        if old != new and self.streamed:
            await apublish(key, new)
        change = self._change(key, old, new)
        if change is not None:
            await state_changed.asend(sender=self.sender, **change)

    # -- operations on a key -------------------------------------------------------------

    def _get(self, key: StateKey) -> T:
        return self._read(get_backend().get(key, self.ttl))

    def _set(self, key: StateKey, value: Any) -> None:
        text = encode(self.plain(value), self.name)
        self._notify(key, get_backend().set(key, text, self.ttl), text)

    def _update(self, key: StateKey, fn: Callable[[T], Any]) -> T:
        old, new = get_backend().update(key, self._updater(fn), self.ttl)
        self._notify(key, old, new)
        return self.typed(decode(new))

    def _incr(self, key: StateKey, amount: Number) -> T:
        if self._schema is not None:
            return self._update(key, self._adder(amount))
        default = self._default_json()
        old, new = get_backend().incr(key, amount, default, self.ttl)
        self._notify(key, default if old is None else old, new)  # old: what get() gave
        return self.typed(decode(new))  # no schema: the decoded value itself

    def _delete(self, key: StateKey) -> None:
        self._notify(key, get_backend().delete(key), None)

    async def _aget(self, key: StateKey) -> T:
        return self._read(await get_backend().aget(key, self.ttl))

    async def _aset(self, key: StateKey, value: Any) -> None:
        text = encode(self.plain(value), self.name)
        await self._anotify(key, await get_backend().aset(key, text, self.ttl), text)

    async def _aupdate(self, key: StateKey, fn: Callable[[T], Any]) -> T:
        old, new = await get_backend().aupdate(key, self._updater(fn), self.ttl)
        await self._anotify(key, old, new)
        return self.typed(decode(new))

    async def _aincr(self, key: StateKey, amount: Number) -> T:
        if self._schema is not None:
            return await self._aupdate(key, self._adder(amount))
        default = self._default_json()
        old, new = await get_backend().aincr(key, amount, default, self.ttl)
        await self._anotify(key, default if old is None else old, new)
        return self.typed(decode(new))  # no schema: the decoded value itself

    async def _adelete(self, key: StateKey) -> None:
        await self._anotify(key, await get_backend().adelete(key), None)
