"""Load for the PostgreSQL restart test: threads increment the declared counter, half through
the backend API, half through a view (tests/outage_urls.py) with Django's test client, until
stdin closes; then one JSON line: ``{"events": [[time, kind, detail], ...], "last_read": N}``
where kind is "ok" (detail: the acknowledged value), "error" (the exception's class) or
"status" (an HTTP status other than 200), and ``last_read`` is a read once the load stopped.
Run with tests/outage_settings.py, migrated."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import django

THREADS = 4


def main() -> None:
    django.setup()
    from django.db import connections
    from django.test import Client

    from tests.outage_urls import counter

    events: list[tuple[float, str, Any]] = []
    done = threading.Event()

    def load(through_view: bool) -> None:
        client = Client()
        while not done.is_set():
            try:
                if through_view:
                    response = client.post("/incr/")
                    if response.status_code != 200:
                        events.append((time.time(), "status", response.status_code))
                        time.sleep(0.01)
                        continue
                    value = response.json()["value"]
                else:
                    value = counter.incr()
                    counter.get()  # cached_db: fills the cache, which writes must invalidate
            except Exception as exc:  # recorded: the test checks what was raised
                events.append((time.time(), "error", type(exc).__name__))
                time.sleep(0.01)
                continue
            events.append((time.time(), "ok", value))
        connections.close_all()

    threads = [threading.Thread(target=load, args=(i % 2 == 0,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    sys.stdin.read()
    done.set()
    for thread in threads:
        thread.join()
    print(json.dumps({"events": events, "last_read": counter.get()}), flush=True)


if __name__ == "__main__":
    main()
