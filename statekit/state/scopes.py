"""The declared state of the server: ``GlobalState``, ``SessionState`` and ``PageState``.

A variable is declared once, at module level, and reads and writes through the configured
backend. Its scope says whose value a call reaches: everyone's, the session's or the page's.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from datetime import timedelta
from typing import Any, TypeVar, overload

from django.core.exceptions import ImproperlyConfigured

from statekit.keys import Scope, StateKey
from statekit.state.pages import apage_owner, page_owner
from statekit.state.sessions import asession_key, session_key
from statekit.state.variable import Default, Number, T, Variable, qualname

#: The value type a ``schema=`` gives a declaration (the overloads below): with a schema that
#: is a class or a parametrized generic (``Item``, ``list[Item]``, a TypedDict, a pydantic
#: model) and a default, a type checker takes the variable's type from the schema (the
#: default's fit is checked at runtime: ``default=0`` fits ``Decimal``). Other schemas
#: (``int | None``, ``Literal[...]``) leave it to ``default=`` or an annotation.
S = TypeVar("S")
Seconds = float | timedelta | None
OnExpire = Callable[[Any], Any] | None


class GlobalState(Variable[T]):
    """A value shared by every user and every process. It lives until it is deleted.

    ``public=True`` lets any page watch it over the websocket; others are server-only.
    """

    scope = Scope.GLOBAL

    @overload
    def __init__(
        self: GlobalState[S],
        name: str,
        *,
        default: object,  # a value or a factory that fits the schema: checked at runtime
        public: bool = False,
        schema: type[S],
    ) -> None: ...
    @overload
    def __init__(
        self, name: str, *, default: Default[T] = None, public: bool = False, schema: Any = None
    ) -> None: ...
    def __init__(
        self, name: str, *, default: Any = None, public: bool = False, schema: Any = None
    ) -> None:
        self.public = bool(public)
        super().__init__(name, default=default, schema=schema)

    def _signature(self) -> tuple[Any, ...]:
        return (*super()._signature(), self.public)

    def _key(self) -> StateKey:
        return StateKey(self.scope, "", self.name)

    def key_for(self) -> StateKey:
        """Where the value is stored."""
        return self._key()

    def get(self) -> T:
        return self._get(self._key())

    def set(self, value: T) -> None:
        self._set(self._key(), value)

    def update(self, fn: Callable[[T], T]) -> T:
        """Atomically replace the value by ``fn(copy of value)``; return the new value."""
        return self._update(self._key(), fn)

    def incr(self, amount: Number = 1) -> T:
        """Atomically add ``amount``; return the new value."""
        return self._incr(self._key(), amount)

    def delete(self) -> None:
        self._delete(self._key())

    async def aget(self) -> T:
        return await self._aget(self._key())

    async def aset(self, value: T) -> None:
        await self._aset(self._key(), value)

    async def aupdate(self, fn: Callable[[T], T]) -> T:
        return await self._aupdate(self._key(), fn)

    async def aincr(self, amount: Number = 1) -> T:
        return await self._aincr(self._key(), amount)

    async def adelete(self) -> None:
        await self._adelete(self._key())

    def changes(self) -> AsyncGenerator[T]:
        """``async for value in visitors.changes()``: the value now, then after every change
        made by any process (latest value wins: a slow reader skips to the newest). Public
        global state only (ImproperlyConfigured otherwise)."""
        return self._changes(self._key())


class OwnedState(Variable[T]):
    """A variable with one value per owner (a session, a page) and an optional lifetime.

    ``ttl`` (seconds or timedelta): a value nobody reads or writes for that long is gone.
    ``on_expire(value)`` runs once for each value that expires or whose session ends, in
    ``statekit_cleanup`` (never inside a request).
    """

    def __init__(
        self,
        name: str,
        *,
        default: Default[T] = None,
        ttl: Seconds = None,
        on_expire: OnExpire = None,
        schema: Any = None,
    ) -> None:
        if on_expire is not None and not callable(on_expire):
            raise ImproperlyConfigured(
                f"on_expire of {name!r} must be callable, not {on_expire!r}."
            )
        self.on_expire = on_expire
        super().__init__(name, default=default, ttl=ttl, schema=schema)

    def _signature(self) -> tuple[Any, ...]:
        return (*super()._signature(), qualname(self.on_expire))

    def _key(self, owner: Any) -> StateKey:
        raise NotImplementedError("subclasses of OwnedState must provide a _key() method")

    async def _akey(self, owner: Any) -> StateKey:
        raise NotImplementedError("subclasses of OwnedState must provide an _akey() method")

    def key_for(self, owner: Any) -> StateKey:
        """Where ``owner``'s value is stored (see the scopes for what an owner may be)."""
        return self._key(owner)

    def get(self, owner: Any) -> T:
        return self._get(self._key(owner))

    def set(self, owner: Any, value: T) -> None:
        self._set(self._key(owner), value)

    def update(self, owner: Any, fn: Callable[[T], T]) -> T:
        """Atomically replace the value by ``fn(copy of value)``; return the new value."""
        return self._update(self._key(owner), fn)

    def incr(self, owner: Any, amount: Number = 1) -> T:
        """Atomically add ``amount``; return the new value."""
        return self._incr(self._key(owner), amount)

    def delete(self, owner: Any) -> None:
        self._delete(self._key(owner))

    async def aget(self, owner: Any) -> T:
        return await self._aget(await self._akey(owner))

    async def aset(self, owner: Any, value: T) -> None:
        await self._aset(await self._akey(owner), value)

    async def aupdate(self, owner: Any, fn: Callable[[T], T]) -> T:
        return await self._aupdate(await self._akey(owner), fn)

    async def aincr(self, owner: Any, amount: Number = 1) -> T:
        return await self._aincr(await self._akey(owner), amount)

    async def adelete(self, owner: Any) -> None:
        await self._adelete(await self._akey(owner))

    async def changes(self, owner: Any) -> AsyncGenerator[T]:
        """``async for value in cart.changes(request)``: ``owner``'s value now, then after
        every change made by any process (latest value wins)."""
        async with aclosing(self._changes(await self._akey(owner))) as values:
            async for value in values:
                yield value


class SessionState(OwnedState[T]):
    """A value per Django session, shared by the session's tabs.

    ``owner`` is an HttpRequest, a SessionBase or a session key (see :func:`session_key`).
    """

    scope = Scope.SESSION

    @overload
    def __init__(
        self: SessionState[S],
        name: str,
        *,
        default: object,  # a value or a factory that fits the schema: checked at runtime
        ttl: Seconds = None,
        on_expire: OnExpire = None,
        schema: type[S],
    ) -> None: ...
    @overload
    def __init__(
        self,
        name: str,
        *,
        default: Default[T] = None,
        ttl: Seconds = None,
        on_expire: OnExpire = None,
        schema: Any = None,
    ) -> None: ...
    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)

    def _key(self, owner: Any) -> StateKey:
        return StateKey(self.scope, session_key(owner, self), self.name)

    async def _akey(self, owner: Any) -> StateKey:
        return StateKey(self.scope, await asession_key(owner, self), self.name)


class PageState(OwnedState[T]):
    """A value per page load (a tab), like Gradio's gr.State: a refresh starts afresh.

    ``owner`` is the request (carrying the page id statekit.js sends, see
    :mod:`statekit.state.pages`) or a page owner string from
    :func:`statekit.state.pages.page_owner`.
    """

    scope = Scope.PAGE

    @overload
    def __init__(
        self: PageState[S],
        name: str,
        *,
        default: object,  # a value or a factory that fits the schema: checked at runtime
        ttl: Seconds = None,
        on_expire: OnExpire = None,
        schema: type[S],
    ) -> None: ...
    @overload
    def __init__(
        self,
        name: str,
        *,
        default: Default[T] = None,
        ttl: Seconds = None,
        on_expire: OnExpire = None,
        schema: Any = None,
    ) -> None: ...
    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)

    def _key(self, owner: Any) -> StateKey:
        return StateKey(self.scope, page_owner(owner, self), self.name)

    async def _akey(self, owner: Any) -> StateKey:
        return StateKey(self.scope, await apage_owner(owner, self), self.name)
