"""The cursor the database backends' hot statements run on: one per connection.

Django's ``connection.cursor()`` makes a new cursor per call, and on PostgreSQL with psycopg 3
it is a *client-side binding* cursor: every parameter is quoted into the SQL text in Python
and the server parses a new statement text on each call, which cost more than the statement
itself on statekit's hot paths. Those statements (:mod:`statekit.backends.sql`) run instead
on one cursor per connection, kept as long as that connection lives (a new one after
``CONN_MAX_AGE``, a health check or a lost server closed it) and, on psycopg 3, with
*server-side binding*: the text never changes and the parameters travel apart.

Each call still wraps the cursor in Django's cursor wrapper, so query logging
(``CaptureQueriesContext``, ``DEBUG``), ``connection.execute_wrappers``, the translation of the
driver's errors into ``django.db`` errors and the broken-transaction check apply as to any
query; the statements take part in the connection's transaction (``atomic`` blocks) like any
other.

Prepared statements follow the connection's ``prepare_threshold`` (psycopg 3): Django turns
them off unless ``DATABASES[alias]["OPTIONS"]["prepare_threshold"]`` is set, which keeps
connection poolers in transaction mode (PgBouncer before 1.21) working. With a threshold,
statekit's statements are prepared once per connection like Django's own.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

# Per Django connection object (one per thread and alias): the driver connection the cursor
# belongs to, and the cursor. Neither refers back to the Django object, so the entry goes
# with it (a finished thread's connections).
_kept: WeakKeyDictionary[BaseDatabaseWrapper, tuple[Any, Any]] = WeakKeyDictionary()


def _new_cursor(connection: BaseDatabaseWrapper) -> Any:
    driver: Any = getattr(connection, "Database", None)  # the driver's module
    if connection.vendor == "postgresql" and getattr(driver, "__name__", "") == "psycopg":
        # psycopg 3's server-side binding cursor, with the connection's adapters (Django's
        # timestamp loaders among them).
        return driver.Cursor(connection.connection)
    return connection.create_cursor()


def hot_cursor(connection: BaseDatabaseWrapper) -> CursorWrapper:
    """A wrapped cursor of ``connection`` for one statement; not to be closed (no ``with``).

    Opens the connection if needed, like ``connection.cursor()``, and refuses the same
    misuse (from an event loop, from another thread).
    """
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    kept = _kept.get(connection)
    if kept is None or kept[0] is not connection.connection:
        with connection.wrap_database_errors:
            kept = _kept[connection] = (connection.connection, _new_cursor(connection))
    connection.validate_thread_sharing()
    if connection.queries_logged:
        return connection.make_debug_cursor(kept[1])
    return connection.make_cursor(kept[1])
