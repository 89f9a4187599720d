"""cached_db after Redis outages, across processes: the database is the truth.

Each test runs a Redis of its own (tests/redis_server.py) that it kills, hangs (SIGSTOP)
or restarts empty, and other processes (``manage.py statekit set``, tests/outage_worker.py)
that write during the outage. This process holds a cached copy older than the database's,
then reads: the copy must stop being served within ``EPOCH_SECONDS`` of the write (the
stale copy stays in Redis, unreachable). Each test prints the stale-read fraction and the
time to convergence after Redis answers again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.test import override_settings

from statekit import GlobalState
from statekit.backends import get_backend
from statekit.backends.epoch import EPOCH_SECONDS
from tests.conftest import needs, unique_prefix
from tests.redis_server import RedisServer, cached_copy

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "postgres"]),
    *needs("redis", "postgres"),
]

ROOT = Path(__file__).resolve().parent.parent
OBSERVE_SECONDS = 2.0


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def env(redis_server: RedisServer, name: str) -> Iterator[dict[str, str]]:
    """Configure this process for cached_db on ``redis_server``; the environment of the
    other processes, which use the same database, Redis and key prefix."""
    prefix = unique_prefix()
    cache = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": redis_server.url,
        "KEY_PREFIX": "statekit-tests",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
    conf = {"BACKEND": "cached_db", "DATABASE": "postgres", "CACHE_ALIAS": "own"}
    with override_settings(
        CACHES={**settings.CACHES, "own": cache}, STATEKIT={**conf, "KEY_PREFIX": prefix}
    ):
        yield {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.outage_settings",
            "STATEKIT_TEST_PG_NAME": connections["postgres"].settings_dict["NAME"],
            "STATEKIT_TEST_REDIS_URL": redis_server.url,
            "STATEKIT_TEST_PREFIX": prefix,
            "STATEKIT_TEST_VARIABLE": name,
        }


def statekit_command(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "statekit", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


class Worker:
    """A process that reads and writes when told (tests/outage_worker.py)."""

    def __init__(self, env: dict[str, str], retry_seconds: float) -> None:
        command = [sys.executable, "-m", "tests.outage_worker", str(retry_seconds)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def __call__(self, order: str) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(order + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def exit(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0
        self.process.stdout.close()


def observe(case: str, read: Callable[[], Any], fresh: Any) -> list[bool]:
    """Read for OBSERVE_SECONDS from now (Redis answers, or in case (c) the write returned);
    print the figures; return for each read whether it was stale."""
    start = time.monotonic()
    reads: list[tuple[float, bool]] = []
    while (at := time.monotonic() - start) < OBSERVE_SECONDS:
        reads.append((at, read() != fresh))
    stale = [at for at, was_stale in reads if was_stale]
    converged = f"{stale[-1] * 1000:.0f} ms" if stale else "at once"
    print(
        f"case {case}: {len(reads)} reads in {OBSERVE_SECONDS:g} s after Redis answered, "
        f"{100 * len(stale) / len(reads):.1f} % stale, last stale read: {converged}"
    )
    return [was_stale for _, was_stale in reads]


def copy(redis_server: RedisServer, name: str) -> tuple[int, str] | None:
    return cached_copy(redis_server.client(), name)


def assert_converged(stale: list[bool]) -> None:
    """The reads ended fresh and never went back to stale once fresh."""
    assert not all(stale), "every read served the stale copy"
    assert not any(stale[stale.index(False) :]), "a stale read after a fresh one"


def test_a_write_while_redis_was_dead_then_returned_with_its_data(redis_server, env, name):
    counter = GlobalState(name, default=0)
    counter.set(1)
    assert counter.get() == 1
    before = get_backend().epoch.value
    assert copy(redis_server, name) == (before, "1")

    redis_server.kill()
    statekit_command(env, "set", name, "2")  # another process writes, fails to delete, exits
    redis_server.start()  # with the data it had, the stale copy included
    assert copy(redis_server, name) == (before, "1")

    stale = observe("(a) killed, back with its data", counter.get, fresh=2)
    assert_converged(stale)
    time.sleep(EPOCH_SECONDS)
    assert counter.get() == 2
    assert copy(redis_server, name) == (get_backend().epoch.value, "2")
    assert get_backend().epoch.value > before


def test_a_write_while_redis_hung_then_resumed(redis_server, env, name):
    counter = GlobalState(name, default=0)
    counter.set(1)
    assert counter.get() == 1

    redis_server.pause()  # SIGSTOP: connections open, nothing answers
    try:
        statekit_command(env, "set", name, "2")  # its deletion times out
    finally:
        redis_server.resume()

    stale = observe("(b) hung, resumed", counter.get, fresh=2)
    assert_converged(stale)
    time.sleep(EPOCH_SECONDS)
    assert counter.get() == 2


def test_a_write_in_the_retry_window_after_redis_returned_empty(redis_server, env, name):
    counter = GlobalState(name, default=0)
    counter.set(1)
    writer = Worker(env, retry_seconds=600)  # the window lasts the whole test
    try:
        assert writer("get") == 1
        redis_server.kill()
        assert writer("get") == 1  # it sees the outage: Redis is skipped for its window
        redis_server.start(empty=True)

        deadline = time.monotonic() + 30
        while copy(redis_server, name) is None:  # this process refills the cache
            assert time.monotonic() < deadline, "the cache was never refilled"
            assert counter.get() == 1
            time.sleep(0.05)
        assert copy(redis_server, name) == (get_backend().epoch.value, "1")
        assert writer("set 2") == "ok"  # inside its window: it does not delete the copy
        stale = observe("(c) back empty, refilled, then written", counter.get, fresh=2)
    finally:
        writer.exit()
    assert_converged(stale)
    time.sleep(EPOCH_SECONDS)
    assert counter.get() == 2


def test_redis_restarted_from_data_older_than_its_last_deletions(redis_server, env, name):
    """No process saw an outage: Redis came back from a snapshot (or an append-only file not
    yet synced) holding a copy that a write had deleted before the crash."""
    counter = GlobalState(name, default=0)
    counter.set(1)
    assert counter.get() == 1
    before = get_backend().epoch.value
    snapshot = redis_server.snapshot()  # holds the copy of 1
    counter.set(2)  # deletes the copy: Redis answers, nobody sees an outage
    assert counter.get() == 2

    redis_server.kill_and_restore(snapshot)
    redis_server.start()
    assert copy(redis_server, name) == (before, "1")

    stale = observe("(d) restarted from older data", counter.get, fresh=2)
    assert_converged(stale)
    time.sleep(EPOCH_SECONDS)
    assert counter.get() == 2


def test_a_process_that_never_read_the_epoch_invalidates_after_a_move(redis_server, env, name):
    """Writers delete the one key of a value, whatever their view of the epoch: a fresh
    process (it never read the epoch) writing after the epoch moved leaves no stale copy."""
    counter = GlobalState(name, default=0)
    counter.set(1)
    get_backend().epoch.bump()
    assert counter.get() == 1
    assert copy(redis_server, name) == (get_backend().epoch.value, "1")
    statekit_command(env, "set", name, "2")  # Redis answers: it deletes the copy
    assert copy(redis_server, name) is None
    assert counter.get() == 2
