"""The README's demo command, ``./run demo``, run as a newcomer runs it: it migrates a fresh
database, serves the example project with daphne's runserver, and the demos answer.

With no environment it needs no server (SQLite, here a file of the test's own, so the
developer's db.sqlite3 is never touched). With DATABASE_URL and REDIS_URL it runs on
PostgreSQL, Redis and channels-redis, and live state reaches the browsers through Redis.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote
from urllib.request import urlopen

import pytest

from example_project.demo.demos import DEMOS
from tests.conftest import needs
from tests.live_support import ROOT, free_port, visit
from tests.services import POSTGRES, REDIS_HOST, REDIS_PORT

#: The Redis database of the demo on Redis (the suite's others: 9 cache, 10 channels).
REDIS_DB = 11


def fetch(url: str) -> str:
    with urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


@contextmanager
def demo_command(**env: str) -> Iterator[str]:
    """``./run demo`` on a free port, with ``env`` (and none of the test run's settings);
    yields its URL once it serves the index page, and stops it (its process group) after."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "SQLITE_PATH")
    }
    url = f"http://127.0.0.1:{(port := free_port())}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            ["./run", "demo"],
            cwd=ROOT,
            env={**base, **env, "PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the autoreloader's server process too: one group
        )
        try:
            deadline = time.monotonic() + 120
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    fetch(url + "/")
                    break
                except OSError:
                    time.sleep(0.2)
            else:
                log.seek(0)
                output = log.read().decode(errors="replace")
                raise AssertionError(f"./run demo did not serve {url}:\n{output}")
            yield url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def check_the_demos(url: str) -> None:
    index = fetch(url + "/")
    for demo in DEMOS.values():
        assert demo.title in index
        assert f"<h1>{demo.title}</h1>" in fetch(f"{url}/{demo.name}/")
    assert "statekit.watch" in fetch(url + "/static/statekit/statekit.js")
    # the poll: htmx from the demo's own static files (offline), and its event stream
    assert 'version:"2.0.11"' in fetch(url + "/static/demo/vendor/htmx.min.js")
    assert 'htmx.defineExtension("sse"' in fetch(url + "/static/demo/vendor/sse.min.js")
    with urlopen(f"{url}/poll/events/?watch=global:poll_question", timeout=10) as stream:
        lines = iter(stream.readline, b"")
        assert next(line for line in lines if line.startswith(b"event: ")) == (
            b"event: global:poll_question\n"
        )
        assert next(lines).startswith(b"data: ")


def stat(path: Path) -> tuple[int, int] | None:
    return (path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else None


def test_run_demo_serves_the_demos_on_sqlite(tmp_path):
    developers = ROOT / "db.sqlite3"
    before = stat(developers)
    database = tmp_path / "demo.sqlite3"
    with demo_command(SQLITE_PATH=str(database)) as url:
        check_the_demos(url)
        first = visit(url + "/visitors")
        assert visit(url + "/visitors") == first + 1
    assert database.exists()
    assert stat(developers) == before


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for the demo; its URL. Dropped after."""
    import psycopg
    from psycopg import sql

    name = f"statekit_demo_{uuid.uuid4().hex[:10]}"
    server = {"host": POSTGRES["HOST"], "port": POSTGRES["PORT"], "user": POSTGRES["USER"]}
    password = POSTGRES["PASSWORD"]
    credentials = f"{quote(server['user'])}:{quote(password)}"
    with psycopg.connect(**server, password=password, dbname="postgres", autocommit=True) as db:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"postgres://{credentials}@{server['host']}:{server['port']}/{name}"
        finally:
            db.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database for the demo; the example project's keys are deleted after."""
    import redis

    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    client = redis.Redis(REDIS_HOST, REDIS_PORT, db=REDIS_DB)
    for key in client.scan_iter(match="statekit-example*", count=1000):
        client.unlink(key)
    client.close()


class TestOnPostgresqlAndRedis:
    pytestmark = needs("postgres", "redis", "chromium")

    def test_run_demo_serves_the_demos_and_live_state_goes_through_redis(
        self, postgres_database, redis_url
    ):
        from playwright.sync_api import expect, sync_playwright

        from tests.browser import launch_options, watch_errors

        with demo_command(DATABASE_URL=postgres_database, REDIS_URL=redis_url) as url:
            check_the_demos(url)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(**launch_options())
                try:
                    tab = browser.new_page()
                    errors = watch_errors(tab)
                    tab.goto(url + "/visitors/")
                    first = int(tab.text_content("#visitors"))
                    tab.wait_for_function("() => statekit.live.status === 'open'")
                    assert visit(url + "/visitors") == first + 1  # another visit: live here
                    expect(tab.locator("#visitors")).to_have_text(str(first + 1))
                    assert errors == []
                finally:
                    browser.close()
