"""PostgreSQL restarted (crashed: ``pg_ctl stop -m immediate``) under load, on db and
cached_db. A cluster of the test's own (tests/postgres_server.py), never the shared one.

A process (tests/pg_load_worker.py) increments a counter from four threads, half through the
backend API, half through a view. During the outage, calls raise BackendUnavailable and the
view answers 503; once the database answers, every thread is served again (each broken
connection is closed when it fails, so the next call connects afresh); and no increment that
was acknowledged is lost. Prints the failures and the time to recovery.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import needs, unique_prefix
from tests.postgres_server import PostgresServer, available
from tests.services import REDIS_DB, REDIS_HOST, REDIS_PORT, REQUIRED

pytestmark = [
    pytest.mark.postgres,
    *needs("redis"),
    pytest.mark.skipif(not REQUIRED and available() is not None, reason=str(available())),
]

ROOT = Path(__file__).resolve().parent.parent
LOAD_SECONDS = 1.0
OUTAGE_SECONDS = 1.0
AFTER_SECONDS = 2.0


@pytest.fixture
def cluster() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.close()


def _run(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("backend", ["db", "cached_db"])
def test_postgres_restarted_under_load(cluster, backend, name):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.outage_settings",
        "STATEKIT_TEST_PG_NAME": "postgres",
        "STATEKIT_TEST_PG_PORT": str(cluster.port),
        "STATEKIT_TEST_REDIS_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
        "STATEKIT_TEST_BACKEND": backend,
        "STATEKIT_TEST_PREFIX": unique_prefix(),
        "STATEKIT_TEST_VARIABLE": name,
    }
    _run(env, "manage.py", "migrate", "--noinput", "-v", "0")
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.pg_load_worker"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        time.sleep(LOAD_SECONDS)
        down_at = time.time()
        cluster.stop("immediate")
        time.sleep(OUTAGE_SECONDS)
        cluster.start()
        up_at = cluster.wait_answering()
        time.sleep(AFTER_SECONDS)
        out, _ = worker.communicate("", timeout=120)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    report = json.loads(out.splitlines()[-1])
    events = report["events"]
    with cluster.connect() as conn:
        row = conn.execute(
            "SELECT value FROM statekit_statevalue WHERE scope = 'global' AND name = %s", [name]
        ).fetchone()
    final = int(row[0])

    acked = [detail for _, kind, detail in events if kind == "ok"]
    failures = [(at, kind, detail) for at, kind, detail in events if kind != "ok"]
    kinds = {(kind, detail) for _, kind, detail in failures}
    last_failure = max(at for at, _, _ in failures)
    first_ok = min(at for at, kind, _ in events if kind == "ok" and at > up_at)
    print(
        f"{backend}: {len(acked)} increments acknowledged, {len(failures)} refused {kinds} "
        f"in a {up_at - down_at:.2f} s outage; after the database answered: first success "
        f"{(first_ok - up_at) * 1000:.0f} ms, last failure {(last_failure - up_at) * 1000:.0f} ms"
    )
    assert failures, "the load did not meet the outage"
    assert kinds <= {("error", "BackendUnavailable"), ("status", 503)}
    assert any(kind == "ok" and at > last_failure for at, kind, _ in events), "never recovered"
    assert len(set(acked)) == len(acked)  # incr is atomic: each value acknowledged once
    assert max(acked) <= final  # no acknowledged increment was lost...
    assert len(acked) <= final <= len(acked) + len(failures)  # ...and none counted twice
    assert report["last_read"] == final  # cached_db: no stale copy outlived the outage
