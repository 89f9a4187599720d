"""The database backends' cleanup: values no on_expire needs are deleted unread in few
statements, one pass over the table reads each range of it once (however many rows earlier
batches deleted), and the counts per variable stay exact when the range changes under it."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from statekit import SessionState
from statekit.cleanup import cleanup
from statekit.models import StateValue
from tests.conftest import BACKENDS

DATABASES = [p for p in BACKENDS if p.id != "cache"]
POSTGRES = [p for p in DATABASES if p.id == "db-postgres"]


def _expired(backend, name: str, count: int, value: str = "1") -> None:
    past = timezone.now() - timedelta(seconds=1)
    StateValue.objects.using(backend.alias).bulk_create(
        [
            StateValue(scope="session", owner=f"s{i}", name=name, value=value, expires_at=past)
            for i in range(count)
        ],
        batch_size=5000,
    )


@pytest.mark.parametrize("backend", DATABASES, indirect=True)
def test_cleanup_deletes_values_without_on_expire_in_few_statements(backend, name):
    seen = []
    SessionState(f"{name}.plain", default=0, ttl=60)
    SessionState(f"{name}.watched", default=0, ttl=60, on_expire=seen.append)
    _expired(backend, f"{name}.plain", 5000)
    _expired(backend, f"{name}.watched", 30, value="7")
    with CaptureQueriesContext(connections[backend.alias]) as seen_sql:
        report = cleanup(batch_size=50)
    deletes = [q["sql"] for q in seen_sql.captured_queries if "DELETE" in q["sql"]]
    unread = [sql for sql in deletes if "RETURNING scope, owner, name, value" not in sql]
    assert report.expired == 5030 and seen == [7] * 30
    assert report.by_variable["session", f"{name}.plain"] == 5000
    assert report.by_variable["session", f"{name}.watched"] == 30
    # Reading them, 50 at a time, would be 100 DELETEs and more.
    assert 1 <= len(unread) <= 6, unread


def _scanned(plan: dict) -> int:
    """The pages the table and index scans under ``plan`` touched (in the cache or read);
    not those of the DELETE itself, which touches a deleted row's page again."""
    if plan["Node Type"].endswith("Scan"):
        return plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
    return sum(_scanned(child) for child in plan.get("Plans", []))


@pytest.mark.parametrize("backend", POSTGRES, indirect=True)
def test_each_cleanup_statement_reads_its_range_not_the_table(backend, name):
    """Every statement of a cleanup touches a bounded part of the table, also at the end,
    when earlier batches left their deleted rows behind: picking "the next expired rows"
    with LIMIT scanned all of them again at every batch, quadratic in the table's size."""
    SessionState(f"{name}.plain", default=0, ttl=60)
    SessionState(f"{name}.watched", default=0, ttl=60, on_expire=lambda value: None)
    _expired(backend, f"{name}.plain", 30_000)
    _expired(backend, f"{name}.watched", 3_000)
    connection = connections[backend.alias]
    table = connection.ops.quote_name(StateValue._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")
        cursor.execute("SELECT relpages FROM pg_class WHERE oid = %s::regclass", [table])
        pages = cursor.fetchone()[0]
    touched: list[tuple[int, str]] = []

    def explained(execute, sql, params, many, context):
        """Each statement of the cleanup on the table, run first under EXPLAIN ANALYZE in
        a savepoint that is rolled back: the pages it touches as the cleanup stands."""
        if table in sql and sql.lstrip().startswith(("SELECT scope", "DELETE", "WITH")):
            cursor = context["cursor"]
            cursor.execute("SAVEPOINT explained")
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            cursor.execute("ROLLBACK TO SAVEPOINT explained")
            touched.append((_scanned(plan[0]["Plan"]), sql))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explained):
        report = cleanup(batch_size=20)  # ranges of some 2,000 rows: about 25 pages
    assert report.expired == 33_000
    assert pages >= 300, pages
    assert len(touched) >= 15, touched  # many batches: the last ones see the dead rows
    worst = max(touched)
    assert worst[0] <= pages // 4, f"{worst[0]} of {pages} pages: {worst[1]}"


def _other_connection(backend) -> psycopg.Connection:
    conf = connections[backend.alias].settings_dict
    return psycopg.connect(
        host=conf["HOST"], port=conf["PORT"], user=conf["USER"], dbname=conf["NAME"],
        autocommit=True,
    )  # fmt: skip


@pytest.mark.parametrize("backend", POSTGRES, indirect=True)
def test_counts_stay_exact_when_the_range_changes_between_count_and_delete(backend, name):
    """Between the cleanup's count of a range and its DELETE, another process revives one
    value (a write extends its expiry) and another cleanup takes five: the report counts
    what this cleanup deleted, and the revived value is not taken as expired."""
    SessionState(name, default=0, ttl=60)
    _expired(backend, name, 300)
    table = connections[backend.alias].ops.quote_name(StateValue._meta.db_table)
    meddled = []

    def meddle(execute, sql, params, many, context):
        if sql.startswith(f"DELETE FROM {table}") and "RETURNING" not in sql and not meddled:
            with _other_connection(backend) as other:
                other.execute(
                    f"UPDATE {table} SET expires_at = now() + interval '1 hour'"
                    " WHERE name = %s AND owner = 's0'",
                    [name],
                )
                other.execute(
                    f"DELETE FROM {table} WHERE name = %s AND owner IN"
                    " ('s1', 's2', 's3', 's4', 's5')",
                    [name],
                )
            meddled.append(sql)
        return execute(sql, params, many, context)

    with connections[backend.alias].execute_wrapper(meddle):
        report = cleanup()
    assert meddled, "the cleanup made no plain DELETE"
    assert report.expired == 294  # the count of the range said 300
    # The revived value was live: it was kept as expired state, then taken as the state of
    # a session that does not exist.
    assert report.ended == 1 and report.by_variable["session", name] == 295


@pytest.mark.parametrize("backend", [p for p in DATABASES if p.id == "db-sqlite"], indirect=True)
def test_ids_deleted_long_ago_make_no_empty_ranges(backend, name):
    """SQLite's ranges are of the ids there are: a table whose ids run from 1 to a billion
    (those between deleted long ago) is gone over in a few statements, not in ten thousand
    ranges of ids that no longer exist."""
    SessionState(name, default=0, ttl=60)
    past = timezone.now() - timedelta(seconds=1)
    StateValue.objects.using(backend.alias).bulk_create(
        StateValue(id=i, scope="session", owner=f"s{i}", name=name, value="1", expires_at=past)
        for i in (1, 2, 500_000_000, 999_999_999)
    )
    with CaptureQueriesContext(connections[backend.alias]) as seen_sql:
        report = cleanup(batch_size=10)
    assert report.expired == 4
    assert len(seen_sql.captured_queries) <= 30, len(seen_sql.captured_queries)
