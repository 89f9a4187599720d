"""Redis becomes unreachable (a real Redis behind a proxy we cut) and comes back."""

from __future__ import annotations

import logging
import time

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from redis import ConnectionError, Redis, TimeoutError
from redis import asyncio as aredis

from statekit import BackendUnavailable, GlobalState
from statekit.backends import get_backend
from statekit.backends.cached_db import RETRY_SECONDS
from statekit.backends.redis import Reach
from tests.conftest import clear_redis_prefix, needs, unique_prefix
from tests.proxy import TcpProxy
from tests.redis_server import cached_copy
from tests.services import REDIS_DB, REDIS_HOST, REDIS_PORT

counted = GlobalState("outage.counted", default=0)


def count(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"value": counted.incr()})


async def acount(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"value": await counted.aincr()})


urlpatterns = [path("count/", count), path("acount/", acount)]

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "postgres"]),
    *needs("redis", "postgres"),
]


@pytest.fixture
def proxy():
    proxy = TcpProxy((REDIS_HOST, REDIS_PORT))
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def through(proxy):
    """Configure statekit's backend to reach Redis through the proxy."""
    prefix = unique_prefix()
    proxied = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{proxy.port}/{REDIS_DB}",
        "KEY_PREFIX": "statekit-tests",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }

    def configure(backend: str):
        return override_settings(
            CACHES={**settings.CACHES, "proxied": proxied},
            STATEKIT={
                "BACKEND": backend,
                "DATABASE": "postgres",
                "CACHE_ALIAS": "proxied",
                "KEY_PREFIX": prefix,
            },
        )

    yield configure
    clear_redis_prefix("redis", prefix)


def test_cache_backend_raises_backend_unavailable(proxy, through, name):
    with through("cache"):
        counter = GlobalState(name, default=0)
        assert counter.incr() == 1
        proxy.stop()
        operations = [
            counter.get,
            lambda: counter.set(5),
            counter.incr,
            lambda: counter.update(lambda n: n + 1),
            counter.delete,
        ]
        for call in operations:
            with pytest.raises(BackendUnavailable, match="'proxied'"):
                call()
        proxy.start()
        assert counter.incr() == 2


def test_cached_db_serves_the_database_and_is_never_stale_after(proxy, through, name, caplog):
    direct = caches["redis"].client.get_client(write=True)
    with through("cached_db"):
        counter = GlobalState(name, default=0)
        counter.set(1)
        assert counter.get() == 1
        before = get_backend().epoch.value
        assert cached_copy(direct, name) == (before, "1")  # the read filled the cache

        proxy.stop()
        with caplog.at_level(logging.WARNING, logger="statekit"):
            counter.set(2)
            assert counter.get() == 2
            assert counter.incr() == 3
        assert "unavailable" in caplog.text
        assert cached_copy(direct, name) == (before, "1")  # Redis still holds the stale copy

        proxy.start()
        time.sleep(RETRY_SECONDS + 0.1)
        assert counter.get() == 3  # the writes of the outage moved the epoch: a miss
        assert counter.get() == 3
        after = get_backend().epoch.value
        assert after > before
        assert cached_copy(direct, name) == (after, "3")  # refilled from the database


def test_views_answer_503_while_the_backend_is_unavailable(proxy, through):
    with through("cache"), override_settings(ROOT_URLCONF=__name__):
        assert Client().post("/count/").json() == {"value": 1}
        proxy.stop()
        for response in (Client().post("/count/"), async_to_sync(AsyncClient().post)("/acount/")):
            assert response.status_code == 503
            assert response["Retry-After"] == "1"
        proxy.start()
        assert Client().post("/count/").json() == {"value": 2}


def test_reach_translates_a_lost_redis_or_falls_back(proxy):
    """The one translation of "Redis is down" (statekit.backends.redis.Reach): raised as
    BackendUnavailable, or, for a caller that can do without Redis, a block ended quietly."""
    client = Redis(host="127.0.0.1", port=proxy.port, socket_timeout=2)
    reach = Reach("Redis behind cache alias 'somewhere'")
    with reach.fallback(pytest.fail) as attempt:
        assert client.ping()
    assert not attempt.lost
    proxy.stop()
    with (
        pytest.raises(
            BackendUnavailable, match="cannot reach Redis behind cache alias 'somewhere'"
        ),
        reach,
    ):
        client.ping()
    lost = []
    with reach.fallback(lost.append) as attempt:
        client.ping()
        pytest.fail("not reached: the block ends at the lost connection")
    assert attempt.lost and isinstance(lost[0], ConnectionError | TimeoutError)
    with pytest.raises(KeyError), reach.fallback(lost.append):  # other errors pass
        raise KeyError("x")
    assert len(lost) == 1

    async def use() -> bool:
        async with reach.fallback(lost.append) as attempt:
            await aredis.Redis(host="127.0.0.1", port=proxy.port, socket_timeout=2).ping()
        return attempt.lost

    assert async_to_sync(use)() and len(lost) == 2
