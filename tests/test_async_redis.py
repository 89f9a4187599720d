"""The async twins of the Redis backends run on redis.asyncio: no thread hop, one client per
event loop, and Redis down is still BackendUnavailable (real Redis, no mock)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import override_settings
from redis.asyncio.connection import AbstractConnection

from statekit import BackendUnavailable, GlobalState, SessionState
from statekit.backends import epoch, get_backend
from statekit.backends.redis_async import AsyncRedis
from tests.conftest import clear_redis_prefix, needs, unique_prefix
from tests.live_support import free_port
from tests.redis_server import RedisServer

pytestmark = needs("redis", "postgres")


def configure(backend: str, alias: str = "redis", **caches: dict[str, object]):
    return override_settings(
        CACHES={**settings.CACHES, **caches},
        STATEKIT={
            "BACKEND": backend,
            "DATABASE": "postgres" if backend == "cached_db" else "default",
            "CACHE_ALIAS": alias,
            "KEY_PREFIX": unique_prefix(),
        },
    )


@pytest.fixture
def cache_backend() -> Iterator[None]:
    with configure("cache"):
        prefix = settings.STATEKIT["KEY_PREFIX"]
        yield
    clear_redis_prefix("redis", prefix)


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The thread of every command sent on a redis.asyncio connection (wraps the real send)."""
    threads: list[int] = []
    send = AbstractConnection.send_packed_command

    async def recording(self: AbstractConnection, *args: object, **kwargs: object) -> None:
        threads.append(threading.get_ident())
        await send(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(AbstractConnection, "send_packed_command", recording)
    return threads


@pytest.mark.django_db
def test_cache_async_twins_make_no_thread_hop(cache_backend, sends, name):
    counter, cart = GlobalState(name, default=0), SessionState(name, default=list, ttl=60)

    async def scenario() -> tuple[int, list[object]]:
        seen = [await counter.aincr(), await counter.aincr(4), await counter.aget()]
        await counter.aset(10)
        seen.append(await counter.aupdate(lambda v: v * 2))
        await cart.aset("s1", ["a"])
        seen.append(await cart.aget("s1"))
        await cart.adelete("s1")
        await counter.adelete()
        seen.append(await counter.aget())
        return threading.get_ident(), seen

    loop_thread, seen = async_to_sync(scenario)()
    assert seen == [1, 5, 5, 20, ["a"], 0]
    assert len(sends) >= 9
    assert set(sends) == {loop_thread}


@pytest.mark.django_db
def test_cache_aincr_of_a_session_counter_and_a_float_stays_on_the_loop(cache_backend, sends, name):
    score = SessionState(name, default=0, ttl=60)

    async def scenario() -> tuple[int, list[object]]:
        seen = [await score.aincr("s1", 2), await score.aincr("s1", 0.5)]
        return threading.get_ident(), seen

    loop_thread, seen = async_to_sync(scenario)()
    assert seen == [2, 2.5]
    assert set(sends) == {loop_thread}


@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
def test_cached_db_warm_aget_makes_no_thread_hop(sends, name, monkeypatch):
    monkeypatch.setattr(epoch, "EPOCH_SECONDS", 600.0)  # the epoch stays fresh: no query
    value = GlobalState(name, default=None)
    with configure("cached_db"):
        prefix = settings.STATEKIT["KEY_PREFIX"]
        value.set({"a": 1})
        assert value.get() == {"a": 1}  # the miss fills the cache

        async def scenario() -> tuple[int, object]:
            return threading.get_ident(), await value.aget()

        sends.clear()
        loop_thread, got = async_to_sync(scenario)()
        value.delete()
    clear_redis_prefix("redis", prefix)
    assert got == {"a": 1}
    assert sends and set(sends) == {loop_thread}


def _client_of_loop() -> tuple[AsyncRedis, asyncio.AbstractEventLoop]:
    async def scenario() -> tuple[AsyncRedis, asyncio.AbstractEventLoop]:
        clients = get_backend().aredis
        first = await clients.get()
        await GlobalState("async.loops", default=0).aincr()
        assert await clients.get() is first  # one client per loop
        return first, asyncio.get_running_loop()

    return asyncio.run(scenario())


@pytest.mark.django_db
def test_each_event_loop_gets_its_own_client_closed_with_it(cache_backend):
    one, loop_one = _client_of_loop()
    two, loop_two = _client_of_loop()
    assert one.client is not two.client
    assert loop_one.is_closed() and loop_two.is_closed()
    assert not list(get_backend().aredis._by_loop)  # closed with their loops
    for conn in (one, two):  # every connection the loop opened was disconnected
        pool = conn.client.connection_pool
        assert all(not c.is_connected for c in pool._available_connections)
        assert not pool._in_use_connections


@pytest.mark.django_db(transaction=True)
def test_loops_in_parallel_threads_get_their_own_clients(cache_backend):
    barrier = threading.Barrier(4, timeout=30)
    found: list[tuple[AsyncRedis, asyncio.AbstractEventLoop]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        async def scenario() -> None:
            barrier.wait()  # all loops run at once
            for _ in range(20):
                await GlobalState("async.parallel", default=0).aincr()
            found.append((await get_backend().aredis.get(), asyncio.get_running_loop()))

        try:
            asyncio.run(scenario())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len({id(conn.client) for conn, _ in found}) == 4
    assert len({id(loop) for _, loop in found}) == 4
    assert GlobalState("async.parallel", default=0).get() == 80


@pytest.fixture
def redis_down() -> Iterator[None]:
    """A cache alias whose Redis does not answer (nothing listens on its port)."""
    down = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
    with configure("cache", alias="down", down=down):
        yield


@pytest.mark.django_db
def test_redis_down_raises_backend_unavailable_from_every_async_twin(redis_down, name):
    counter, score = GlobalState(name, default=0), SessionState(name, default=0)
    calls = [
        counter.aincr,
        counter.aget,
        lambda: counter.aset(1),
        lambda: counter.aupdate(lambda v: v + 1),
        counter.adelete,
        lambda: score.aincr("s1", 0.5),
        lambda: score.aincr("s1", 2),
        lambda: score.aget("s1"),
    ]
    for call in calls:
        with pytest.raises(BackendUnavailable, match="cache alias 'down'"):
            asyncio.run(call())


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """The cache backend on a Redis server of this test's own, which it restarts."""
    server = RedisServer()
    server.start()
    own = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": server.url,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
    with configure("cache", alias="own", own=own):
        yield server
    server.close()


@pytest.mark.django_db
def test_a_loop_outlives_a_redis_restart_and_a_script_flush(own_redis, name):
    score = SessionState(name, default=0, ttl=60)

    async def scenario() -> list[object]:
        seen = [await score.aincr("s1", 2)]  # the INCR script, on this loop's client
        own_redis.client().script_flush()  # Redis forgot the script: loaded again
        seen.append(await score.aincr("s1", 3))
        own_redis.kill()
        with pytest.raises(BackendUnavailable):
            await score.aincr("s1")
        own_redis.start()  # with its data (append-only file): the same client reconnects
        seen += [await score.aincr("s1"), await score.aget("s1")]
        return seen

    assert asyncio.run(scenario()) == [2, 5, 6, 6]
