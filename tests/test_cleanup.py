"""statekit_cleanup at scale and under concurrency."""

from __future__ import annotations

import io
import multiprocessing
import time
import tracemalloc
from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from statekit import SessionState
from statekit.backends import StateKey, get_backend
from statekit.cleanup import cleanup
from statekit.models import StateValue
from tests.conftest import ALL_BACKENDS

every_backend = pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)


def _expired_rows(backend, name: str, count: int) -> None:
    """``count`` expired session values of ``name``, written as fast as each backend allows."""
    if backend.uses_database:
        past = timezone.now() - timedelta(seconds=1)
        rows = (
            StateValue(scope="session", owner=f"s{i}", name=name, value=str(i), expires_at=past)
            for i in range(count)
        )
        StateValue.objects.using(backend.alias).bulk_create(rows, batch_size=5000)
    else:
        for start in range(0, count, 5000):
            with backend.redis.pipeline(transaction=False) as pipe:
                for i in range(start, min(count, start + 5000)):
                    state_key = StateKey("session", f"s{i}", name)
                    key = backend.keys.key(state_key)
                    pipe.set(key, str(i))
                    pipe.zadd(backend.keys.index(state_key), {key: 1})
                pipe.execute()


@every_backend
def test_cleanup_of_100k_expired_values_keeps_memory_bounded(backend, name):
    count = 100_000 if backend.uses_database else 50_000
    seen = 0

    def counted(value):
        nonlocal seen
        seen += 1

    SessionState(name, default=0, ttl=60, on_expire=counted)
    _expired_rows(backend, name, count)
    tracemalloc.start()
    try:
        report = cleanup(batch_size=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"cleanup of {count} expired values: peak traced memory {peak / 1e6:.2f} MB")
    assert report.expired == count and seen == count
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"  # 100k rows would be ~60 MB
    assert get_backend().count_expired() == 0


def _run_cleanup(path: str) -> None:
    report = cleanup(batch_size=200)
    with open(path, "a") as out:
        out.write(f"done {report.expired + report.ended}\n")
    connections.close_all()


@every_backend
def test_two_cleanups_at_once_run_each_callback_once(backend, name, tmp_path):
    calls = tmp_path / "calls.txt"

    def record(value):
        with open(calls, "a") as out:  # O_APPEND: whole lines from both processes
            out.write(f"{value}\n")

    session = SessionStore()
    session.create()
    live = SessionState(name + "live", default=0, ttl=3600)
    live.set(session, 1)
    SessionState(name, default=0, ttl=60, on_expire=record)
    _expired_rows(backend, name, 5000)
    connections.close_all()
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_run_cleanup, args=(str(calls),)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    lines = calls.read_text().splitlines()
    values = [line for line in lines if not line.startswith("done")]
    done = sorted(int(line.split()[1]) for line in lines if line.startswith("done"))
    assert sorted(values, key=int) == [str(i) for i in range(5000)]  # each exactly once
    assert sum(done) == 5000
    assert live.get(session) == 1  # live state untouched


def test_cleanup_command_fails_with_a_clear_message(db, settings):
    settings.CACHES = {
        **settings.CACHES,
        "dead": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2},
        },
    }
    with override_settings(STATEKIT={"BACKEND": "cache", "CACHE_ALIAS": "dead"}):
        with pytest.raises(CommandError, match=r"statekit_cleanup failed.*'dead'"):
            call_command("statekit_cleanup")


@every_backend
def test_cleanup_command_reports_failing_callbacks(backend, name):
    def boom(value):
        raise RuntimeError("callback failed")

    v = SessionState(name, default=0, ttl=0.1, on_expire=boom)
    v.set("s1", 1)
    time.sleep(0.3)
    with pytest.raises(CommandError, match="1 on_expire callback"):
        call_command("statekit_cleanup", stdout=io.StringIO())
    assert get_backend().count_expired() == 0  # claimed all the same


@pytest.mark.django_db(transaction=True)
def test_values_of_undeclared_variables_are_reported(caplog):
    past = timezone.now() - timedelta(seconds=1)
    StateValue.objects.create(scope="session", owner="x", name="gone.from.code", value="1",
                              expires_at=past)  # fmt: skip
    report = cleanup()
    assert report.undeclared == 1 and report.expired == 1
    assert "gone.from.code" in caplog.text
