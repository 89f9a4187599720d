"""The SQL of the "db" backend's hot paths, built once per database vendor and table.

Each write is one statement where the database can do it in one: building and compiling ORM
queries costs more than the round trip on every call. Parameters keep Django's ``%s`` style
(the SQLite wrapper turns them into ``?``); datetimes go in adapted by the connection's
``ops.adapt_datetimefield_value``. PostgreSQL and SQLite (3.35 or later, for RETURNING).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

#: The stored text of an integer that the SQL ``incr`` adds to: canonical JSON (no sign on
#: zero, no leading zeros) of at most 18 digits, so with ``|amount| < 2**62`` the sum always
#: fits a 64-bit integer. Anything else takes the compare-and-swap path.
INTEGER = re.compile(r"0|-?[1-9][0-9]{0,17}")
MAX_AMOUNT = 2**62

KEY = "scope = %s AND owner = %s AND name = %s"
LIVE = "(expires_at IS NULL OR expires_at > %s)"
COLUMNS = "(scope, owner, name, value, version, updated_at, expires_at)"


class Statements(NamedTuple):
    # params: scope, owner, name, default + amount, now, expiry or NULL, amount.
    # Returns (value, version): version 1 for a row this statement inserted, else the live
    # integer row it added to. Nothing when the row is dead or holds no such integer.
    incr: str
    # params: value, now, keep expiry (bool), expiry, scope, owner, name, now. PostgreSQL
    # only (SQLite's RETURNING cannot see the FROM clause): the previous text of a live row.
    set_live: str | None
    # params: scope, owner, name, now. (id, value, expires_at) of the live row.
    fetch: str
    # params: expiry, id, now. Extends the expiry of a live row.
    slide: str
    # params: scope, owner, name, now. The deleted live row's text.
    delete_live: str
    # params: scope, owner, name, now. (id, value, version, dead) of the row, live or dead.
    read: str
    read_locked: str | None  # the same, row locked until the transaction ends
    # params: value, now, keep expiry (bool), expiry, id, version. Changes nothing if the
    # row's version moved on.
    swap: str
    # params: id, version.
    remove: str
    # params: scope, owner, name, value, now, expiry. Returns the id, nothing if the key
    # exists already.
    insert: str


@lru_cache(maxsize=8)
def statements(vendor: str, table: str) -> Statements:
    """The statements for a connection's ``vendor`` and the quoted ``table`` name."""
    if vendor == "postgresql":
        add = "CAST(CAST(row.value AS bigint) + CAST(%s AS bigint) AS text)"
        integer = "row.value ~ '^(0|-?[1-9][0-9]{0,17})$'"
        set_live = (
            f"UPDATE {table} AS row SET value = %s, version = row.version + 1, "
            "updated_at = %s, expires_at = CASE WHEN %s THEN row.expires_at ELSE %s END "
            f"FROM (SELECT id, value FROM {table} WHERE {KEY} AND {LIVE} FOR UPDATE) AS old "
            "WHERE row.id = old.id RETURNING old.value"
        )
    else:
        add = "CAST(CAST(row.value AS INTEGER) + %s AS TEXT)"
        integer = "length(row.value) <= 18 AND CAST(CAST(row.value AS INTEGER) AS TEXT) = row.value"
        set_live = None
    read = (
        "SELECT id, value, version, expires_at IS NOT NULL AND expires_at <= %s "
        f"FROM {table} WHERE {KEY}"
    )
    return Statements(
        incr=(
            f"INSERT INTO {table} AS row {COLUMNS} VALUES (%s, %s, %s, %s, 1, %s, %s) "
            "ON CONFLICT (scope, owner, name) DO UPDATE SET "
            f"value = {add}, version = row.version + 1, updated_at = excluded.updated_at, "
            "expires_at = COALESCE(excluded.expires_at, row.expires_at) "
            f"WHERE (row.expires_at IS NULL OR row.expires_at > excluded.updated_at) "
            f"AND {integer} RETURNING value, version"
        ),
        set_live=set_live,
        fetch=f"SELECT id, value, expires_at FROM {table} WHERE {KEY} AND {LIVE}",
        slide=f"UPDATE {table} SET expires_at = %s WHERE id = %s AND expires_at > %s",
        delete_live=f"DELETE FROM {table} WHERE {KEY} AND {LIVE} RETURNING value",
        read=read,
        read_locked=f"{read} FOR UPDATE" if vendor == "postgresql" else None,
        swap=(
            f"UPDATE {table} SET value = %s, version = version + 1, updated_at = %s, "
            "expires_at = CASE WHEN %s THEN expires_at ELSE %s END WHERE id = %s AND version = %s"
        ),
        remove=f"DELETE FROM {table} WHERE id = %s AND version = %s",
        insert=(
            f"INSERT INTO {table} {COLUMNS} VALUES (%s, %s, %s, %s, 1, %s, %s) "
            "ON CONFLICT (scope, owner, name) DO NOTHING RETURNING id"
        ),
    )
