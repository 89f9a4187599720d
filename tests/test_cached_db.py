"""cached_db specifics: reads are served by Redis, and every write keeps it coherent."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import caches
from django.db import transaction
from django.db.models import QuerySet
from django.test import override_settings
from django.utils import timezone

from statekit import GlobalState, SessionState
from statekit.backends import StateKey, get_backend
from statekit.models import StateValue
from tests.conftest import ALL_BACKENDS, clear_redis_prefix, needs, unique_prefix
from tests.redis_server import cached_copy

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "postgres"]),
    *needs("redis", "postgres"),
]


@pytest.fixture(autouse=True)
def cached_db():
    prefix = unique_prefix()
    conf = {"BACKEND": "cached_db", "DATABASE": "postgres", "CACHE_ALIAS": "redis"}
    with override_settings(STATEKIT={**conf, "KEY_PREFIX": prefix}):
        yield get_backend()
    clear_redis_prefix("redis", prefix)


#: cached_db on one Redis and on the tests' Redis Cluster (the ``backend`` fixture's params).
on_either = pytest.mark.parametrize(
    "backend", [p for p in ALL_BACKENDS if p.id.startswith("cached_db")], indirect=True
)


def _write_row_behind_statekits_back(name: str, text: str) -> None:
    StateValue.objects.using("postgres").filter(name=name).update(value=text)


def test_reads_come_from_the_cache(name):
    counter = GlobalState(name, default=0)
    counter.set(1)
    assert counter.get() == 1
    _write_row_behind_statekits_back(name, "99")
    assert counter.get() == 1  # served by Redis, not the database
    assert counter.incr() == 100  # writes go to the database, the truth...
    assert counter.get() == 100  # ...and drop the cached copy


def test_absent_values_are_cached_too(name):
    counter = GlobalState(name, default=0)
    assert counter.get() == 0
    StateValue.objects.using("postgres").create(scope="global", name=name, value="7")
    assert counter.get() == 0
    counter.delete()
    assert counter.get() == 0
    counter.set(3)
    assert counter.get() == 3


def test_a_transaction_reads_its_own_writes_and_the_cache_waits_for_commit(name):
    counter = GlobalState(name, default=0)
    counter.set(1)
    assert counter.get() == 1
    with transaction.atomic(using="postgres"):
        counter.set(2)
        assert counter.get() == 2
    assert counter.get() == 2


def test_a_rolled_back_write_leaves_the_cache_right(name):
    counter = GlobalState(name, default=0)
    counter.set(1)
    assert counter.get() == 1
    with pytest.raises(RuntimeError), transaction.atomic(using="postgres"):
        counter.set(2)
        raise RuntimeError
    assert counter.get() == 1


def test_a_raising_receiver_after_commit_leaves_the_cache_right(name, caplog):
    first, second = GlobalState(name, default=0), GlobalState(name + "b", default=0)
    first.set(1)
    second.set(1)
    assert (first.get(), second.get()) == (1, 1)  # both cached

    @first.on_change
    def boom(owner, old, new):
        raise RuntimeError("receiver failed")

    with transaction.atomic(using="postgres"):
        first.set(5)
        second.set(2)
    assert second.get() == 2  # its invalidation ran despite the receiver before it
    assert "receiver failed" in caplog.text


def test_a_copy_without_an_epoch_is_replaced_on_the_next_read(cached_db, name):
    """Copies cached by a statekit from before epochs ("v<text>") are misses, then refilled."""
    counter = GlobalState(name, default=0)
    counter.set(2)
    redis = caches["redis"].client.get_client(write=True)
    redis.set(cached_db.keys.key(StateKey("global", "", name)), b"v1")
    assert counter.get() == 2
    assert cached_copy(redis, name) == (cached_db.epoch.value, "2")


def test_a_copy_from_before_copies_carried_their_expiry_is_a_miss(cached_db, name):
    """ "v<epoch>:<text>" (a statekit whose copies did not carry the expiry): refilled."""
    counter = GlobalState(name, default=0)
    counter.set(2)
    redis = caches["redis"].client.get_client(write=True)
    redis.set(
        cached_db.keys.key(StateKey("global", "", name)), b"v%d:1" % cached_db.epoch.current()
    )
    assert counter.get() == 2
    assert cached_copy(redis, name) == (cached_db.epoch.value, "2")


def _session() -> str:
    session = SessionStore()
    session.create()
    return str(session.session_key)


def _expires_in(rows: QuerySet[StateValue], name: str) -> float:
    (expires_at,) = rows.filter(name=name).values_list("expires_at", flat=True)
    return (expires_at - timezone.now()).total_seconds()


@on_either
def test_reads_with_a_ttl_come_from_the_cache_until_the_expiry_must_be_extended(backend, name):
    visits = SessionState(name, default=0, ttl=60)  # extended once short by 6 s (the slack)
    owner = _session()
    rows = StateValue.objects.using("postgres").filter(scope="session", owner=owner)
    visits.set(owner, 1)
    assert visits.get(owner) == 1  # a miss: the copy is filled, with the expiry
    rows.filter(name=name).update(value="2", expires_at=timezone.now() + timedelta(seconds=50))
    assert visits.get(owner) == 1  # served by Redis: its copy's expiry is not due
    # The copy as it is after 10 s of reads: its expiry is short of now + ttl by more than
    # the slack, so the next read extends the database's, and refills the copy.
    copy = backend.keys.key(StateKey("session", owner, name))
    stale = b"w%d:%d:1" % (backend.epoch.current(), (time.time() + 50) * 1000)
    backend.keys.redis.set(copy, stale)
    assert visits.get(owner) == 2  # the database's, extended
    assert _expires_in(rows, name) > 55
    rows.filter(name=name).update(value="3")
    assert visits.get(owner) == 2  # served by the refilled copy
    visits.set(owner, 4)
    assert visits.get(owner) == 4  # a write deletes the copy, as without a ttl


@on_either
def test_async_reads_with_a_ttl_come_from_the_cache(backend, name):
    visits = SessionState(name, default=0, ttl=60)
    owner = _session()
    visits.set(owner, 1)
    assert visits.get(owner) == 1
    _write_row_behind_statekits_back(name, "2")

    async def read() -> int:
        backend.epoch.current()  # not due: aget needs no query for it
        return await visits.aget(owner)

    assert asyncio.run(read()) == 1
