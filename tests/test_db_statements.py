"""The database backends' hot writes are single statements, contended rows do not collapse
into retries, and the cleanup deletes values no on_expire needs without reading them."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from statekit import GlobalState, SessionState
from statekit.backends import StateKey
from statekit.backends.sql import drop_statement, expired_rows
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


@pytest.mark.parametrize("backend", DATABASES, indirect=True)
def test_cleanup_deletes_values_without_on_expire_in_few_statements(backend, name):
    seen = []
    SessionState(f"{name}.plain", default=0, ttl=60)
    SessionState(f"{name}.watched", default=0, ttl=60, on_expire=seen.append)
    past = timezone.now() - timedelta(seconds=1)
    rows = [
        StateValue(scope="session", owner=f"s{i}", name=f"{name}.plain", value=str(i),
                   expires_at=past)
        for i in range(5000)
    ] + [
        StateValue(scope="session", owner=f"s{i}", name=f"{name}.watched", value=str(i),
                   expires_at=past)
        for i in range(30)
    ]  # fmt: skip
    StateValue.objects.using(backend.alias).bulk_create(rows, batch_size=2000)
    with CaptureQueriesContext(connections[backend.alias]) as seen_sql:
        report = cleanup(batch_size=50)
    deletes = [q["sql"] for q in seen_sql.captured_queries if "DELETE" in q["sql"]]
    assert report.expired == 5030 and sorted(seen) == list(range(30))
    assert report.by_variable["session", f"{name}.plain"] == 5000
    # Old code: one DELETE ... RETURNING value per 50 values, 100 and more.
    assert len(deletes) <= 6, deletes


def _visited(plan: dict) -> int:
    """The rows the table scans under ``plan`` looked at (kept or filtered out), all loops."""
    seen = 0
    if "Relation Name" in plan:
        looked = plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)
        seen = looked * plan["Actual Loops"]
    return seen + sum(_visited(child) for child in plan.get("Plans", []))


@pytest.mark.parametrize("backend", [p for p in DATABASES if p.id == "db-postgres"], indirect=True)
def test_a_cleanup_batch_reads_its_rows_not_the_table(backend, name):
    """A batch of the cleanup's deletes looks at about the rows it deletes, however many
    expired rows are left: ``id IN (SELECT ... LIMIT n)`` joined the whole table per batch,
    which made the cleanup of a large table quadratic."""
    past, limit = timezone.now() - timedelta(seconds=1), 500
    StateValue.objects.using(backend.alias).bulk_create(
        [
            StateValue(scope="session", owner=f"s{i}", name=name, value="1", expires_at=past)
            for i in range(40 * limit)
        ],
        batch_size=5000,
    )
    connection = connections[backend.alias]
    table = connection.ops.quote_name(StateValue._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    batches = [
        (drop_statement("postgresql", table, 0), [now, "expired", limit, now]),
        (f"DELETE FROM {table} WHERE {expired_rows('postgresql', table)}", [now, limit, now]),
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")  # the planner sees the table as it is
        for statement, params in batches:
            with transaction.atomic(using=backend.alias):
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", params)
                plan = cursor.fetchone()[0][0]["Plan"]
                transaction.set_rollback(True, using=backend.alias)
            assert _visited(plan) <= 3 * limit, plan
