"""cached_db specifics: reads are served by Redis, and every write keeps it coherent."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.db import transaction
from django.test import override_settings

from statekit import GlobalState
from statekit.backends import StateKey, get_backend
from statekit.models import StateValue
from tests.conftest import clear_redis_prefix, needs, unique_prefix
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
