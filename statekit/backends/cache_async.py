"""What the "cache" backend's sync and async paths share, and its async path.

The async twins of the value operations (``aget``, ``aset``, ``aupdate``, ``aincr``,
``adelete``) run on a redis.asyncio client of the running event loop
(:class:`~statekit.backends.redis_async.LoopClients`), with the same Lua scripts and the same
translation of "Redis is down" (:class:`~statekit.backends.redis.Reach`) as the sync path:
no thread hop. A client that cannot be rebuilt for asyncio keeps the base class's threads.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from statekit.backends import scripts as lua
from statekit.backends.base import BaseBackend, Updater, adding
from statekit.backends.redis import RedisKeys, text_of
from statekit.backends.redis_async import AsyncRedis
from statekit.keys import Scope, StateKey, bury

SCRIPTS = (
    "READ",
    "SET",
    "DELETE",
    "INCR",
    "PEEK",
    "SWAP",
    "EXPIRE",
    "POP",
    "TAKE",
    "MOVE",
    "PLACE",
    "DROP",
)


def millis(ttl: float | None) -> int:
    """Milliseconds for Redis; 0 means no ttl."""
    return 0 if ttl is None else max(1, round(ttl * 1000))


def small(amount: int | float | Decimal) -> bool:
    """Whether Redis can add ``amount`` itself (the INCR script; its sum fits 64 bits)."""
    return type(amount) is int and abs(amount) < 2**62


def counter(key: StateKey, amount: int | float | Decimal, default: str) -> bool:
    """Whether ``incr`` is one INCRBY: a global counter whose absent value counts as 0, so
    the previous value is exactly ``new - amount``."""
    return small(amount) and key.scope == Scope.GLOBAL and default == "0"


class CacheCore(BaseBackend):
    uses_cache = True

    def __init__(self) -> None:
        self.keys = RedisKeys()
        self.redis = self.keys.redis
        self.reach = self.keys.reach
        code = {name: getattr(lua, name) for name in SCRIPTS}
        self.lua = {name: self.redis.register_script(text) for name, text in code.items()}
        self.aredis = self.keys.loop_clients(code)

    def _grave(self, key: StateKey) -> str:
        """Where a dead, unclaimed value waits for its on_expire callback."""
        return self.keys.key(bury(key))

    def _triple(self, key: StateKey) -> list[str]:
        """The KEYS of the SET, DELETE and INCR scripts: the value, its index, its grave."""
        return [self.keys.key(key), self.keys.index(key), self._grave(key)]

    def _swap_args(
        self, peeked: list[Any], fn: Updater, ttl: float | None
    ) -> tuple[str | None, str, list[Any]]:
        """``(old, new, ARGV of SWAP)`` of an update, from what the PEEK script read."""
        value, due, now = peeked
        old = None if value is None or (due is not None and due <= now) else text_of(value)
        new = fn(old)
        return old, new, [new, millis(ttl), old or "", "0" if old is None else "1"]

    # -- async, on the event loop's own client ---------------------------------------------

    async def _arun(
        self, conn: AsyncRedis, name: str, keys: list[str], args: list[Any] | None = None
    ) -> Any:
        script = conn.lua[name]
        async with self.reach:
            try:
                return await conn.client.evalsha(script.sha, len(keys), *keys, *(args or ()))
            except NoScriptError:  # Redis restarted or flushed its scripts
                return await script(keys=keys, args=args or [])

    async def aget(self, key: StateKey, ttl: float | None = None) -> str | None:
        if self.aredis is None:
            return await super().aget(key, ttl)
        conn = await self.aredis.get()
        if key.scope == Scope.GLOBAL:  # never expires: a plain GET
            async with self.reach:
                return text_of(await conn.client.get(self.keys.key(key)))
        keys = [self.keys.key(key), self.keys.index(key)]
        return text_of(await self._arun(conn, "READ", keys, [millis(ttl)]))

    async def aset(self, key: StateKey, text: str, ttl: float | None) -> str | None:
        if self.aredis is None:
            return await super().aset(key, text, ttl)
        keys = self._triple(key)
        return text_of(await self._arun(await self.aredis.get(), "SET", keys, [text, millis(ttl)]))

    async def adelete(self, key: StateKey) -> str | None:
        if self.aredis is None:
            return await super().adelete(key)
        keys = self._triple(key)
        return text_of(await self._arun(await self.aredis.get(), "DELETE", keys))

    async def aupdate(
        self, key: StateKey, fn: Updater, ttl: float | None
    ) -> tuple[str | None, str]:
        if self.aredis is None:
            return await super().aupdate(key, fn, ttl)
        conn = await self.aredis.get()
        while True:
            peeked = await self._arun(conn, "PEEK", self._triple(key)[:2])
            old, new, args = self._swap_args(peeked, fn, ttl)
            if await self._arun(conn, "SWAP", self._triple(key), args):
                return old, new

    async def aincr(
        self, key: StateKey, amount: int | float | Decimal, default: str, ttl: float | None
    ) -> tuple[str | None, str]:
        if self.aredis is None:
            return await super().aincr(key, amount, default, ttl)
        if not small(amount):
            return await self.aupdate(key, adding(key, amount, default), ttl)
        conn = await self.aredis.get()
        if counter(key, amount, default):
            try:
                async with self.reach:
                    new = await conn.client.incrby(
                        self.keys.key(key), int(amount)
                    )  # counter(): an int
            except ResponseError:  # not an integer Redis can add to: the general path
                pass
            else:
                return str(new - amount), str(new)
        keys = self._triple(key)
        done = await self._arun(conn, "INCR", keys, [amount, default, millis(ttl)])
        if done:
            return text_of(done[0]), str(done[1])
        return await self.aupdate(key, adding(key, amount, default), ttl)
