"""Set up the benchmark's database for the backend in ``BENCH_BACKEND`` and print the keys of
``BENCH_SESSIONS`` sessions (default 1), one a line, that hold the values the session views
read (``python -m benchmarks.http_project.prepare``, run by bench_http.py and bench_scale.py
before they start the servers)."""

from __future__ import annotations

import os
from importlib import import_module

import django
from django.conf import settings
from django.core.management import call_command
from django.db import connection

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.http_project.settings")


def main() -> None:
    django.setup()
    from benchmarks.http_project.views import seen, seen_ttl

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_floor (id integer PRIMARY KEY, v bigint)")
        cursor.execute("DELETE FROM bench_floor")
        cursor.execute("INSERT INTO bench_floor VALUES (1, 0)")
    for _ in range(int(os.environ.get("BENCH_SESSIONS", "1"))):
        store = import_module(settings.SESSION_ENGINE).SessionStore()
        store["seen"] = 1
        store.save()
        seen.set(store.session_key, 1)
        seen_ttl.set(store.session_key, 1)
        print(store.session_key)


if __name__ == "__main__":
    main()
