"""The "db" backend's hot statements run on one cursor per connection (server-side binding on
psycopg 3) and still behave as any Django query: in the transaction, through the execute
wrappers, across a closed connection, prepared only when the connection says so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connections, transaction

from statekit import GlobalState
from statekit.backends.db_cursor import hot_cursor
from tests.conftest import BACKENDS

DATABASES = [p for p in BACKENDS if p.id in ("db-sqlite", "db-postgres")]
POSTGRES = [p for p in BACKENDS if p.id == "db-postgres"]


def _driver_cursor(alias: str) -> object:
    return hot_cursor(connections[alias]).cursor


@pytest.mark.parametrize("backend", DATABASES, indirect=True)
def test_one_cursor_per_connection_and_a_new_one_after_a_close(backend, name):
    counter = GlobalState(name, default=0)
    counter.incr()
    first = _driver_cursor(backend.alias)
    counter.incr()
    assert _driver_cursor(backend.alias) is first
    connections[backend.alias].close()  # CONN_MAX_AGE reached, or a lost server
    assert counter.incr() == 3
    assert _driver_cursor(backend.alias) is not first


@pytest.mark.parametrize("backend", POSTGRES, indirect=True)
def test_postgresql_binds_on_the_server(backend, name):
    import psycopg

    GlobalState(name, default=0).incr()
    cursor = _driver_cursor(backend.alias)
    assert isinstance(cursor, psycopg.Cursor)
    assert not isinstance(cursor, psycopg.ClientCursor)


@pytest.mark.parametrize("backend", DATABASES, indirect=True)
def test_writes_take_part_in_the_transaction(backend, name):
    counter = GlobalState(name, default=0)
    counter.set(5)
    with pytest.raises(ZeroDivisionError), transaction.atomic(using=backend.alias):
        assert counter.incr() == 6
        assert counter.get() == 6
        1 / 0  # noqa: B018
    assert counter.get() == 5


@pytest.mark.parametrize("backend", DATABASES, indirect=True)
def test_execute_wrappers_see_the_statements(backend, name):
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    counter = GlobalState(name, default=0)
    with connections[backend.alias].execute_wrapper(wrapper):
        counter.incr()
        counter.get()
    assert len(seen) == 2 and seen[0].startswith("INSERT")


def _prepared(alias: str) -> list[str]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def prepare_threshold(request: pytest.FixtureRequest) -> Iterator[None]:
    """The PostgreSQL connection reopened with OPTIONS["prepare_threshold"] = the param."""
    connection = connections["postgres"]
    options = connection.settings_dict["OPTIONS"]
    before = options.copy()
    connection.close()
    options["prepare_threshold"] = request.param
    try:
        yield
    finally:
        connection.close()
        options.clear()
        options.update(before)


@pytest.mark.parametrize("backend", POSTGRES, indirect=True)
@pytest.mark.parametrize("prepare_threshold", [0], indirect=True)
def test_statements_are_prepared_when_the_connection_prepares(backend, name, prepare_threshold):
    counter = GlobalState(name, default=0)
    for _ in range(3):
        counter.incr()
    assert counter.get() == 3
    prepared = _prepared(backend.alias)
    assert any("ON CONFLICT" in sql for sql in prepared), prepared


@pytest.mark.parametrize("backend", POSTGRES, indirect=True)
def test_nothing_is_prepared_by_default(backend, name):
    """Django's default (no prepare_threshold): what transaction-mode poolers need."""
    counter = GlobalState(name, default=0)
    for _ in range(10):
        counter.incr()
    assert _prepared(backend.alias) == []
