"""The background thread of the resources: it runs their closes, and every
``STATEKIT["RESOURCE_SWEEP_SECONDS"]`` the sweeps registered with :func:`every_sweep`.

One thread per process, started on first use (and again after a fork). Closes wait in a
queue; when :data:`MAX_PENDING_CLOSES` already wait (an ``on_close`` slower than evictions),
the caller closes the object itself, unless its thread runs an event loop (``on_close`` may
block, or use the ORM): memory stays bounded, and the request that evicts pays.
"""

from __future__ import annotations

import asyncio
import functools
import math
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from statekit.conf import DEFAULTS, get_settings

#: Closes waiting for the thread; beyond, the caller closes (see the module doc).
MAX_PENDING_CLOSES = 1000

_tasks: queue.Queue[Callable[[], None]] = queue.Queue()
_sweeps: list[Callable[[], None]] = []
_worker_lock = threading.Lock()
_worker: threading.Thread | None = None


def every_sweep(sweep: Callable[[], None]) -> None:
    """Run ``sweep`` in the thread every ``RESOURCE_SWEEP_SECONDS`` (it must not raise)."""
    _sweeps.append(sweep)


def close_later(close: Callable[[Any], None], objs: list[Any]) -> None:
    """``close(obj)`` for each of ``objs``, in the thread (see the module doc)."""
    for obj in objs:
        if _tasks.qsize() < MAX_PENDING_CLOSES or _in_event_loop():
            _tasks.put(functools.partial(close, obj))
            start()
        else:
            close(obj)


def drain(timeout: float = 10) -> None:
    """Wait until every close queued so far has run."""
    done = threading.Event()
    _tasks.put(done.set)
    start()
    if not done.wait(timeout):
        raise TimeoutError("statekit: session resources did not close in time.")


def start() -> None:
    """Start the thread, unless it runs (after a fork, the child has none)."""
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, name="statekit-resources", daemon=True)
            _worker.start()


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _work() -> None:
    next_sweep = time.monotonic()
    while True:
        try:
            task = _tasks.get(timeout=max(0.0, next_sweep - time.monotonic()))
        except queue.Empty:
            for sweep in list(_sweeps):
                sweep()
            next_sweep = time.monotonic() + sweep_seconds()
            continue
        task()


def sweep_seconds() -> float:
    """``RESOURCE_SWEEP_SECONDS``, or its default while the settings are wrong (the system
    checks report them: statekit.E001, E008): this thread never dies of a typo."""
    try:
        seconds = float(get_settings()["RESOURCE_SWEEP_SECONDS"])
    except (ImproperlyConfigured, TypeError, ValueError, OverflowError):
        seconds = 0
    return seconds if 0 < seconds < math.inf else DEFAULTS["RESOURCE_SWEEP_SECONDS"]
