"""The database backends' hot writes are single statements, and contended rows do not
collapse into retries."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from statekit import GlobalState, SessionState
from statekit.backends import StateKey
from statekit.cleanup import cleanup
from statekit.models import StateValue
from tests.conftest import BACKENDS
from tests.update_worker import hammer

DATABASES = [p for p in BACKENDS if p.id != "cache"]


def _statements(backend, call) -> list[str]:
    with CaptureQueriesContext(connections[backend.alias]) as seen:
        call()
    return [q["sql"] for q in seen.captured_queries]


@pytest.mark.parametrize("backend", DATABASES, indirect=True)
def test_incr_is_one_statement(backend, name):
    counter = GlobalState(name, default=0)
    assert len(_statements(backend, counter.incr)) == 1  # the row is absent: inserted
    assert len(_statements(backend, lambda: counter.incr(5))) == 1
    assert counter.get() == 6


@pytest.mark.parametrize("backend", DATABASES, indirect=True)
def test_delete_of_a_live_value_is_one_statement(backend, name):
    value = GlobalState(name, default=None)
    value.set({"a": 1})
    assert len(_statements(backend, value.delete)) == 1
    assert value.get() is None


@pytest.mark.parametrize("backend", [p for p in DATABASES if p.id != "db-sqlite"], indirect=True)
def test_set_of_a_live_value_is_one_statement_on_postgresql(backend, name, state_changes):
    value = GlobalState(name, default=None)
    value.set([1])
    assert len(_statements(backend, lambda: value.set([2]))) == 1
    assert value.get() == [2]
    assert state_changes[-1][-1] == [2]


@pytest.mark.parametrize("backend", DATABASES, indirect=True)
@pytest.mark.parametrize(
    ("start", "amount"),
    [
        (999_999_999_999_999_999, 2**62 - 1),  # 18 digits: in SQL, the sum fits 64 bits
        (-999_999_999_999_999_999, -(2**62) + 1),
        (10**18, 1),  # 19 digits: the compare-and-swap path
        (7, 2**62),
        (0, -3),
        (1.5, 2),
        (2, 0.25),
    ],
)
def test_incr_at_the_edges_of_the_sql_path(backend, name, start, amount):
    counter = GlobalState(name, default=0)
    counter.set(start)
    assert counter.incr(amount) == start + amount
    assert counter.get() == start + amount


@pytest.mark.parametrize("backend", DATABASES, indirect=True)
def test_incr_keeps_a_live_expiry_and_buries_a_dead_value(backend, name):
    seen = []
    counter = SessionState(name, default=0, ttl=60, on_expire=seen.append)
    session = SessionStore()
    session.create()  # a live session: its values are not ended by the cleanup
    owner = session.session_key
    key = StateKey("session", owner, name)
    counter.set(owner, 41)
    rows = StateValue.objects.using(backend.alias)
    rows.filter(scope="session", name=name).update(expires_at=timezone.now() - timedelta(1))
    assert counter.incr(owner) == 1  # the dead 41 counts as absent ...
    cleanup()
    assert seen == [41]  # ... and its on_expire still runs, once
    assert backend.entry(key).expires_at > timezone.now() + timedelta(seconds=50)


@pytest.mark.parametrize("backend", [p for p in DATABASES if p.id == "db-postgres"], indirect=True)
def test_contended_update_does_not_collapse_into_retries(backend, name, tmp_path):
    """8 processes update one row: fn runs about once per update, not several times."""
    processes, updates = 8, 60
    calls = tmp_path / "calls"
    connection = connections[backend.alias]
    setup = {
        "databases": {backend.alias: connection.settings_dict["NAME"]},
        "statekit": settings.STATEKIT,
    }
    context = multiprocessing.get_context("spawn")  # see tests/update_worker.py
    start = context.Barrier(processes)  # each waits, its set-up done, for the others
    workers = [
        context.Process(target=hammer, args=(start, setup, str(calls), name, updates))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
        if worker.is_alive():  # hung: reported below (exit code None)
            worker.kill()
    errors = tmp_path / "calls.error"
    assert [w.exitcode for w in workers] == [0] * processes, errors.exists() and errors.read_text()
    assert len(GlobalState(name, default=list).get()) == processes * updates
    total = sum(int(line) for line in calls.read_text().split())
    print(f"{processes} processes, {processes * updates} updates: fn ran {total} times")
    assert total <= processes * updates * 1.5  # compare-and-swap alone: ~4 calls each
