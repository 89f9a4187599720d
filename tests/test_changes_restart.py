"""Change streams when their server restarts (issue 15): Redis (cache backend) and PostgreSQL
(db backend) are stopped under a following process and started again; the feed reconnects
and the stream resyncs to the current value, a value it could only learn by reading again.

How it is told apart from a published change: the value is written *without* publishing
(straight through the backend) while the feed is connected, so the stream cannot see it
until it resyncs after the restart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import needs, unique_prefix
from tests.postgres_server import PostgresServer, available
from tests.redis_server import RedisServer
from tests.services import REDIS_DB, REDIS_HOST, REDIS_PORT, REQUIRED

ROOT = Path(__file__).resolve().parent.parent

RAW_WRITE = (
    "from statekit.backends import StateKey, get_backend; "
    "get_backend().set(StateKey('global', '', {name!r}), {text!r}, None)"
)
WRITE = "from statekit import GlobalState; GlobalState({name!r}, default=0, public=True).set({v})"


def _manage(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


class Follower:
    """A process printing ``name.changes()`` (tests/stream_worker.py)."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        command = [sys.executable, "-m", "tests.stream_worker", "follow", name]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def next(self) -> object:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the follower ended"
        return json.loads(line)

    def close(self) -> None:
        self.process.communicate("", timeout=60)


def _env(backend: str, name: str, pg: str, pg_port: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.outage_settings",
        "PYTHONPATH": str(ROOT),
        "STATEKIT_TEST_PG_NAME": pg,
        "STATEKIT_TEST_PG_PORT": pg_port,
        "STATEKIT_TEST_REDIS_URL": redis_url,
        "STATEKIT_TEST_BACKEND": backend,
        "STATEKIT_TEST_PREFIX": unique_prefix(),
        "STATEKIT_TEST_VARIABLE": f"{name}.outage",
    }


def _resyncs(env: dict[str, str], name: str, restart) -> None:
    follower = Follower(env, name)
    try:
        assert follower.next() == 0
        _manage(env, "shell", "-c", WRITE.format(name=name, v=1))
        assert follower.next() == 1  # published: the feed is connected
        _manage(env, "shell", "-c", RAW_WRITE.format(name=name, text="7"))  # not published
        restart()
        assert follower.next() == 7  # only a resync can tell
        _manage(env, "shell", "-c", WRITE.format(name=name, v=8))
        assert follower.next() == 8  # and changes flow again
    finally:
        follower.close()


def needing(*services: str):
    """Decorator: the marks of :func:`tests.conftest.needs`."""

    def marked(test):
        for mark in needs(*services):
            test = mark(test)
        return test

    return marked


@pytest.mark.django_db(transaction=True, databases=["default", "postgres"])
@needing("redis", "postgres")
def test_changes_resync_after_redis_restarts(name):
    redis_server = RedisServer()
    redis_server.start()
    try:
        env = _env(
            "cache",
            name,
            str(connections["postgres"].settings_dict["NAME"]),
            os.environ.get("STATEKIT_TEST_PG_PORT", "5432"),
            redis_server.url,
        )

        def restart() -> None:
            redis_server.kill()
            redis_server.start()  # with its data (append-only, synced at every write)

        _resyncs(env, name, restart)
    finally:
        redis_server.close()


@pytest.mark.postgres
@pytest.mark.skipif(not REQUIRED and available() is not None, reason=str(available()))
@needing("redis")
def test_changes_resync_after_postgres_restarts(name):
    cluster = PostgresServer()
    cluster.start()
    try:
        env = _env(
            "db",
            name,
            "postgres",
            str(cluster.port),
            f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
        )
        _manage(env, "migrate", "--noinput", "-v", "0")

        def restart() -> None:
            cluster.stop("immediate")
            cluster.start()
            cluster.wait_answering()

        _resyncs(env, name, restart)
    finally:
        cluster.close()
