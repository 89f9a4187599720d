"""A worker of tests/test_db_statements.py that updates one list many times, started with
multiprocessing's "spawn" method: a fresh interpreter. A forked copy of the test process
inherits the locks that its other threads (left by earlier tests: executors, browsers,
channel layers) held at the fork, and hangs on one of them, now and then."""

from __future__ import annotations

import traceback
from typing import Any


def hammer(start: Any, setup: dict[str, Any], out: str, name: str, updates: int) -> None:
    """Once every worker reached the barrier ``start``, ``updates`` appends to ``name``;
    then append how many times the function ran to the file ``out`` (a traceback to
    ``out.error`` if one failed).

    ``setup``: ``databases`` (alias: the test database's name) and ``statekit`` (settings).
    """
    import django
    from django.conf import settings

    for alias, database in setup["databases"].items():
        settings.DATABASES[alias]["NAME"] = database
    settings.STATEKIT = setup["statekit"]
    django.setup()
    from django.db import connections

    from statekit import GlobalState

    calls = 0

    def append(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        return [*items, 1]

    log = GlobalState(name, default=list)
    start.wait(timeout=120)
    try:
        for _ in range(updates):
            log.update(append)
    except Exception:
        with open(f"{out}.error", "a") as error:
            error.write(traceback.format_exc())
        raise
    finally:
        connections.close_all()
    with open(out, "a") as done:
        done.write(f"{calls}\n")
