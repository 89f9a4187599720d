"""incr and update lose nothing when several OS processes write one variable at once."""

from __future__ import annotations

import multiprocessing

import pytest
from django.db import connections

from statekit import GlobalState, SessionState
from tests.conftest import ALL_BACKENDS

pytestmark = pytest.mark.parametrize("backend", ALL_BACKENDS, indirect=True)

PROCESSES = 4
INCREMENTS = 500
APPENDS = 100


def _run(target, *args) -> None:
    """Run ``target(worker, *args)`` in PROCESSES forked processes; all must succeed."""
    connections.close_all()  # children open their own connections
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [
        context.Process(target=_worker, args=(start, target, i, *args)) for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=240)
    assert [w.exitcode for w in workers] == [0] * PROCESSES


def _worker(start, target, index, *args) -> None:
    start.wait()
    target(index, *args)
    connections.close_all()


def _increment(index: int, name: str) -> None:
    counter = GlobalState(name, default=0)
    for _ in range(INCREMENTS):
        counter.incr()


def _append(index: int, name: str) -> None:
    log = SessionState(name, default=list)
    for i in range(APPENDS):
        log.update("shared-session", lambda items, i=i: [*items, f"{index}-{i}"])


def test_incr_from_processes_loses_nothing(backend, name):
    _run(_increment, name)
    assert GlobalState(name, default=0).get() == PROCESSES * INCREMENTS


def test_update_from_processes_loses_nothing(backend, name):
    _run(_append, name)
    items = SessionState(name, default=list).get("shared-session")
    assert len(items) == PROCESSES * APPENDS
    assert set(items) == {f"{p}-{i}" for p in range(PROCESSES) for i in range(APPENDS)}
