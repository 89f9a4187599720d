"""statekit's database writes and cleanup side by side with the raw SQL they stand for.

1. ``UPDATE ... RETURNING`` vs ``GlobalState.incr()`` on "db" (PostgreSQL), "db" (SQLite) and
   "cached_db" (PostgreSQL; the raw side adds the one Redis ``DEL`` a write must cost), and
   Django's own cached_db session read (a ``SessionStore`` per call, as per request) vs
   ``SessionState.get()`` with a ttl (3600 s) on "cached_db", both warm
2. 8 processes on one PostgreSQL row, for --seconds each, interleaved rounds: the raw
   ``UPDATE ... RETURNING`` loop vs ``incr()``, and a raw ``SELECT ... FOR UPDATE`` +
   ``UPDATE`` transaction vs ``update(fn)``
3. Cleanup of --rows expired values (no on_expire) vs a raw ``DELETE`` of as many rows

Ratios are statekit / raw of interleaved rounds (a machine shared with other work makes the
absolute figures noisy); nothing is asserted. PostgreSQL runs as a deployment would set it
up, with ``OPTIONS["prepare_threshold"] = 5`` (statekit.I010); the raw side goes through
Django's default cursor, which prepares nothing either way. ``--prepare-threshold none``
measures Django's default.

    python benchmarks/bench_db.py [--ops N] [--rounds R] [--seconds S] [--rows N]
        [--prepare-threshold N|none]

Needs PostgreSQL on 127.0.0.1:5432 (database "statekit_bench", as bench_core.py) and Redis
on 127.0.0.1:6379 (db 11, per-run prefix).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
import tracemalloc
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import (
    CACHE_PREFIX,
    DB_NAME,
    PG,
    REDIS_URL,
    Result,
    compare,
    create_database,
)

PROCESSES = 8


def configure_django(sqlite_path: str, prepare_threshold: int | None = 5) -> None:
    import django
    from django.conf import settings
    from django.core.management import call_command

    settings.configure(
        DEBUG=False,
        SECRET_KEY="statekit-bench",
        USE_TZ=True,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.sessions", "statekit"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": DB_NAME,
                **PG,
                "OPTIONS": {"prepare_threshold": prepare_threshold},
            },
            "lite": {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path},
        },
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": CACHE_PREFIX,
            }
        },
        STATEKIT={"BACKEND": "db"},
    )
    django.setup()
    for alias in ("default", "lite"):
        call_command("migrate", database=alias, verbosity=0, interactive=False)


def raw_counter(alias: str) -> Any:
    from django.db import connections

    cursor = connections[alias].cursor()
    cursor.execute("CREATE TABLE IF NOT EXISTS bench (id integer PRIMARY KEY, v bigint)")
    cursor.execute("DELETE FROM bench")
    cursor.execute("INSERT INTO bench VALUES (1, 0)")
    return cursor


def vacuum() -> None:
    """Both sides start from tables without dead rows: a previous run's million deleted
    rows would otherwise slow whichever statement scans them first (autovacuum is late)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) statekit_statevalue, bench")


def single_calls(ops: int, rounds: int) -> list[Result]:
    from django.core.cache import cache
    from django.test import override_settings

    from statekit import GlobalState

    counter = GlobalState("bench.counter", default=0)
    client = cache.client.get_client(write=True)
    raw_counter("default")
    vacuum()
    results = []
    for label, alias, name in (
        ("db", "default", "db"),
        ("db", "lite", "db"),
        ("cached_db", "default", "cached_db"),
    ):
        cursor = raw_counter(alias)

        def raw(cursor: Any = cursor, name: str = name) -> None:
            cursor.execute("UPDATE bench SET v = v + 1 WHERE id = 1 RETURNING v")
            cursor.fetchone()
            if name == "cached_db":
                client.delete(f"{CACHE_PREFIX}:raw")

        with override_settings(STATEKIT={"BACKEND": name, "DATABASE": alias}):
            vendor = "SQLite" if alias == "lite" else "PostgreSQL"
            results.append(
                compare(
                    "UPDATE RETURNING vs incr()",
                    f"{label}/{vendor}",
                    raw,
                    counter.incr,
                    ops,
                    rounds,
                    0.8,
                )
            )
    results.append(session_reads(ops, rounds))
    return results


def session_reads(ops: int, rounds: int) -> Result:
    from importlib import import_module

    from django.test import override_settings

    from statekit import SessionState

    engine = "django.contrib.sessions.backends.cached_db"
    visits = SessionState("bench.visits", default=0, ttl=3600)
    with override_settings(
        SESSION_ENGINE=engine, STATEKIT={"BACKEND": "cached_db", "DATABASE": "default"}
    ):
        store = import_module(engine).SessionStore
        session = store()
        session["visits"] = 7
        session.create()
        key = session.session_key
        visits.set(key, 7)
        assert store(key)["visits"] == visits.get(key) == 7  # both warm now

        def raw() -> None:
            store(key).get("visits")

        return compare(
            "cached_db session read vs SessionState.get(ttl)",
            "cached_db/PostgreSQL",
            raw,
            partial(visits.get, key),
            ops,
            rounds,
            0.9,
        )


# -- 8 processes on one row ----------------------------------------------------------------


def _worker(kind: str, start: Any, stop: Any, done: Any) -> None:
    from django.db import connection, transaction

    from statekit import GlobalState

    counter = GlobalState("bench.hot", default=0)
    cursor = connection.cursor()
    steps = {
        "raw incr": lambda: cursor.execute("UPDATE bench SET v = v + 1 WHERE id = 1 RETURNING v"),
        "incr()": counter.incr,
        "update(fn)": partial(counter.update, lambda v: v + 1),
    }

    def locked() -> None:
        with transaction.atomic():
            cursor.execute("SELECT v FROM bench WHERE id = 1 FOR UPDATE")
            (v,) = cursor.fetchone()
            cursor.execute("UPDATE bench SET v = %s WHERE id = 1", [v + 1])

    step = steps.get(kind, locked)
    n = 0
    start.wait()
    while not stop.is_set():
        step()
        n += 1
    with done.get_lock():
        done.value += n
    connection.close()


def contended(seconds: float, rounds: int) -> list[tuple[str, list[float], list[float]]]:
    from django.db import connections

    raw_counter("default")
    from statekit import GlobalState

    GlobalState("bench.hot", default=0).set(0)
    connections.close_all()
    context = multiprocessing.get_context("fork")

    def run(kind: str) -> float:
        start, stop, done = context.Event(), context.Event(), context.Value("l", 0)
        procs = [
            context.Process(target=_worker, args=(kind, start, stop, done))
            for _ in range(PROCESSES)
        ]
        for p in procs:
            p.start()
        time.sleep(0.5)
        start.set()
        time.sleep(seconds)
        stop.set()
        for p in procs:
            p.join()
        return done.value / seconds

    pairs = []
    for raw_kind, kit_kind in (("raw incr", "incr()"), ("raw locked", "update(fn)")):
        raw, kit = [], []
        for i in range(rounds):
            order = (raw_kind, kit_kind) if i % 2 == 0 else (kit_kind, raw_kind)
            got = {kind: run(kind) for kind in order}
            raw.append(got[raw_kind])
            kit.append(got[kit_kind])
        pairs.append((f"{raw_kind} vs {kit_kind}", raw, kit))
    return pairs


# -- cleanup ---------------------------------------------------------------------------------


def fill(rows: int, name: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO statekit_statevalue (scope, owner, name, value, version, updated_at,"
            " expires_at) SELECT 'session', 's' || i, %s, i::text, 1, now(),"
            " now() - interval '1 minute' FROM generate_series(1, %s) AS i",
            [name, rows],
        )
        cursor.execute("ANALYZE statekit_statevalue")


def cleanups(rows: int, rounds: int) -> tuple[list[float], list[float], float]:
    from django.db import connection

    from statekit import SessionState
    from statekit.cleanup import cleanup

    SessionState("bench.expired", ttl=60)  # declared, with no on_expire: the common case
    raw, kit, peak = [], [], 0.0
    for i in range(rounds):
        for side in ("raw", "kit") if i % 2 == 0 else ("kit", "raw"):
            fill(rows, "bench.expired")
            started = time.perf_counter()
            if side == "raw":
                with connection.cursor() as cursor:
                    cursor.execute("DELETE FROM statekit_statevalue WHERE expires_at <= now()")
                raw.append(time.perf_counter() - started)
            else:
                tracemalloc.start()
                report = cleanup()
                peak = max(peak, tracemalloc.get_traced_memory()[1] / 1e6)
                tracemalloc.stop()
                kit.append(time.perf_counter() - started)
                assert report.expired == rows, report
            vacuum()
    return raw, kit, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--ops", type=int, default=500, help="calls per round, single calls")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--seconds", type=float, default=3.0, help="per contended round")
    parser.add_argument("--rows", type=int, default=1_000_000, help="expired rows to clean")
    parser.add_argument(
        "--prepare-threshold",
        type=lambda text: None if text == "none" else int(text),
        default=5,
        help='PostgreSQL OPTIONS["prepare_threshold"], as deployments set it ("none": '
        "Django's default, nothing prepared)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            create_database()
            configure_django(str(Path(tmp) / "bench.sqlite3"), args.prepare_threshold)
        except Exception as exc:
            print(f"bench_db: cannot set up the benchmark: {exc}", file=sys.stderr)
            return 2
        print(
            f"statekit database benchmark: median of {args.rounds} interleaved rounds; "
            f"PostgreSQL prepare_threshold {args.prepare_threshold}"
        )
        for r in single_calls(args.ops, args.rounds):
            print(
                f"{r.label:<48} {r.backend:<22} raw {statistics.median(r.raw):>8,.0f}/s "
                f"statekit {statistics.median(r.kit):>8,.0f}/s  ratio {r.ratio:.2f}x "
                f"(rounds {min(r.round_ratios):.2f}-{max(r.round_ratios):.2f}, target {r.target}x)"
            )
        for label, raw, kit in contended(args.seconds, args.rounds):
            ratios = [k / r for k, r in zip(kit, raw, strict=True)]
            print(
                f"{PROCESSES} processes, one row: {label:<26} "
                f"raw {statistics.median(raw):>7,.0f}/s "
                f"statekit {statistics.median(kit):>7,.0f}/s  ratio "
                f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
            )
        raw_s, kit_s, peak = cleanups(args.rows, max(1, args.rounds // 2))
        ratios = [r / k for k, r in zip(kit_s, raw_s, strict=True)]
        print(
            f"cleanup of {args.rows:,} expired rows: raw DELETE {statistics.median(raw_s):.2f} s, "
            f"cleanup() {statistics.median(kit_s):.2f} s, speed ratio "
            f"{statistics.median(ratios):.2f}x (target 0.5x); peak traced {peak:.1f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
