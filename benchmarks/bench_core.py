"""statekit's core paths side by side with the raw calls they wrap, in one run.

1. redis-py ``INCR``              vs ``GlobalState.incr()``  on the "cache" backend
2. Django ``cache.get`` (warm)    vs ``GlobalState.get()``   on the "cached_db" backend
3. SQL ``UPDATE ... SET v = v+1`` vs ``GlobalState.incr()``  on the "db" backend (PostgreSQL)

Raw and statekit calls go through the same connections (the django-redis client of the cache
alias, Django's PostgreSQL connection in autocommit). Within each round raw and statekit
alternate every 50 calls (who goes first flips each time), so load from other processes hits
both alike; the median ops/s over the rounds is reported. A ratio below its target is
reported, never turned into a failure: benchmarks are not tests.

    python benchmarks/bench_core.py [--ops N] [--rounds R] [--db-ops N] [--profile]

Needs Redis on 127.0.0.1:6379 (db 11, keys under a per-run prefix, deleted at the end) and
PostgreSQL on 127.0.0.1:5432 (user postgres; the database "statekit_bench" is created if
missing, the table "bench" is dropped at the end).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import platform
import pstats
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # statekit from this checkout

REDIS_URL = "redis://127.0.0.1:6379/11"
PG = {"HOST": "127.0.0.1", "PORT": 5432, "USER": "postgres", "PASSWORD": ""}
DB_NAME = "statekit_bench"
RUN = uuid.uuid4().hex[:10]
CACHE_PREFIX = f"statekit-bench-{RUN}"  # every Redis key of this run starts with it
TARGET = 0.8  # statekit / raw, for the two cache paths
CHUNK = 50  # raw and statekit alternate every CHUNK calls
VALUE = {"visitors": 1234, "open": True, "title": "statekit"}  # the value read in case 2


@dataclass
class Result:
    label: str
    backend: str
    raw: list[float]  # ops/s, one per round
    kit: list[float]
    target: float | None

    @property
    def ratio(self) -> float:
        return statistics.median(self.kit) / statistics.median(self.raw)

    @property
    def round_ratios(self) -> list[float]:
        return [k / r for k, r in zip(self.kit, self.raw, strict=True)]


# -- setup -----------------------------------------------------------------------------------


def create_database() -> None:
    import psycopg

    conninfo = f"host={PG['HOST']} port={PG['PORT']} user={PG['USER']} dbname=postgres"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if not found:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def configure_django() -> None:
    import django
    from django.conf import settings
    from django.core.management import call_command

    settings.configure(
        DEBUG=False,  # no query log
        SECRET_KEY="statekit-bench",
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.auth",
            "statekit",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": DB_NAME, **PG}},
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": CACHE_PREFIX,
            }
        },
        STATEKIT={"BACKEND": "db", "KEY_PREFIX": "statekit"},
    )
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def ping_redis() -> None:
    from django.core.cache import cache

    cache.client.get_client(write=True).ping()


@contextmanager
def backend(name: str) -> Iterator[None]:
    """Switch statekit to the backend ``name`` (get_backend() is reset on setting_changed)."""
    from django.test import override_settings

    conf = {"BACKEND": name, "DATABASE": "default", "CACHE_ALIAS": "default"}
    with override_settings(STATEKIT={**conf, "KEY_PREFIX": "statekit"}):
        yield


def cleanup() -> None:
    from django.core.cache import cache
    from django.db import connection

    client = cache.client.get_client(write=True)
    for name in client.scan_iter(match=f"{CACHE_PREFIX}:*", count=1000):
        client.unlink(name)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench")
        cursor.execute("DELETE FROM statekit_statevalue WHERE name LIKE 'bench.%%'")


# -- measuring -------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], ops: int) -> float:
    """Seconds taken by ``ops`` calls of ``fn``."""
    start = time.perf_counter()
    for _ in range(ops):
        fn()
    return time.perf_counter() - start


def compare(
    label: str,
    backend_name: str,
    raw: Callable[[], Any],
    kit: Callable[[], Any],
    ops: int,
    rounds: int,
    target: float | None,
) -> Result:
    """ops/s of ``raw`` and ``kit`` in each of ``rounds`` rounds.

    Within a round the two alternate in chunks of ``CHUNK`` calls (the first of each pair
    flips every chunk), so a burst of load from another process hits both sides alike.
    """
    timed(raw, max(1, ops // 10))  # warm-up: connections, caches, code paths
    timed(kit, max(1, ops // 10))
    result = Result(label, backend_name, [], [], target)
    chunks = [CHUNK] * (ops // CHUNK) + ([ops % CHUNK] if ops % CHUNK else [])
    for _ in range(rounds):
        gc.collect()
        spent = {raw: 0.0, kit: 0.0}
        for i, n in enumerate(chunks):
            for fn in (raw, kit) if i % 2 == 0 else (kit, raw):
                spent[fn] += timed(fn, n)
        result.raw.append(ops / spent[raw])
        result.kit.append(ops / spent[kit])
    return result


def profile(label: str, fn: Callable[[], Any], ops: int, limit: int = 18) -> str:
    """cProfile ``ops`` calls of ``fn``; the top functions by own time, as text."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(ops):
        fn()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(limit)
    body = out.getvalue()
    title = f"--- cProfile: {label}, {ops} calls, sorted by own time ---"
    return f"{title}\n{body[body.find('   ncalls') :].rstrip()}\n"


# -- the three comparisons -------------------------------------------------------------------


def run(ops: int, rounds: int, db_ops: int, profiles: list[str] | None) -> list[Result]:
    from django.core.cache import cache
    from django.db import connection

    from statekit import GlobalState
    from statekit.backends import StateKey, get_backend

    results = []
    client = cache.client.get_client(write=True)  # the redis-py client behind the alias

    # 1. INCR on Redis.
    counter = GlobalState("bench.counter", default=0)
    with backend("cache"):
        raw_incr = partial(client.incr, f"{CACHE_PREFIX}:raw:counter")
        label = "redis-py INCR  vs GlobalState.incr()"
        results.append(compare(label, "cache", raw_incr, counter.incr, ops, rounds, TARGET))
        if profiles is not None:
            profiles.append(profile("redis-py INCR", raw_incr, ops))
            profiles.append(profile("GlobalState.incr() [cache]", counter.incr, ops))

    # 2. A warm read through the cache.
    value = GlobalState("bench.value", default=None)
    cache.set("raw:value", VALUE, timeout=None)
    with backend("cached_db"):
        value.set(VALUE)
        assert value.get() == VALUE  # this miss fills the cache ...
        assert cache.get("raw:value") == VALUE
        cached = client.get(get_backend().keys.key(StateKey("global", "", value.name)))
        assert cached is not None and cached[:1] == b"w", cached  # ... and now it is warm
        raw_get = partial(cache.get, "raw:value")
        label = "cache.get      vs GlobalState.get()"
        results.append(compare(label, "cached_db", raw_get, value.get, ops, rounds, TARGET))
        if profiles is not None:
            profiles.append(profile("Django cache.get", raw_get, ops))
            profiles.append(profile("GlobalState.get() [cached_db]", value.get, ops))

    # 3. An atomic increment on PostgreSQL, autocommit.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench (id integer PRIMARY KEY, v bigint)")
        cursor.execute("INSERT INTO bench VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET v = 0")
    assert connection.get_autocommit()
    with backend("db"), connection.cursor() as cursor:
        raw_update = partial(cursor.execute, "UPDATE bench SET v = v + 1 WHERE id = 1")
        label = "SQL UPDATE +1  vs GlobalState.incr()"
        results.append(compare(label, "db", raw_update, counter.incr, db_ops, rounds, None))
    return results


# -- report ----------------------------------------------------------------------------------


def print_table(results: list[Result], ops: int, rounds: int, db_ops: int) -> None:
    import django
    import django_redis
    import psycopg
    import redis

    print(
        f"statekit core benchmark: median of {rounds} interleaved rounds; {ops} ops per round "
        f"on the cache paths, {db_ops} on PostgreSQL"
    )
    print(
        f"Python {platform.python_version()}, Django {django.get_version()}, redis-py "
        f"{redis.__version__}, django-redis {django_redis.__version__}, psycopg "
        f"{psycopg.__version__}; Redis {REDIS_URL}, PostgreSQL {PG['HOST']}:{PG['PORT']}"
    )
    header = (
        f"{'#':<2} {'raw call        vs statekit call':<37} {'backend':<10} "
        f"{'raw ops/s':>10} {'statekit ops/s':>15} {'ratio':>7} {'per round':>12} "
        f"{'target':>7}  result"
    )
    print()
    print(header)
    print("-" * len(header))
    for i, r in enumerate(results, 1):
        spread = r.round_ratios
        target = "-" if r.target is None else f">={r.target:.2f}x"
        verdict = "-" if r.target is None else ("PASS" if r.ratio >= r.target else "below")
        print(
            f"{i:<2} {r.label:<37} {r.backend:<10} {statistics.median(r.raw):>10,.0f} "
            f"{statistics.median(r.kit):>15,.0f} {r.ratio:>6.2f}x "
            f"{min(spread):>5.2f}-{max(spread):.2f}x {target:>7}  {verdict}"
        )
    print()
    print(
        "ratio = median statekit ops/s / median raw ops/s; per round = range of the ratios "
        "of single rounds."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000, help="ops per round on the Redis paths")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (median)")
    parser.add_argument(
        "--db-ops", type=int, default=None, help="ops per round on PostgreSQL (default: ops/10)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile both sides of the cache paths"
    )
    args = parser.parse_args(argv)
    if args.ops < 1 or args.rounds < 1 or (args.db_ops is not None and args.db_ops < 1):
        parser.error("--ops, --rounds and --db-ops must be positive")
    db_ops = args.db_ops or max(1, args.ops // 10)

    try:
        create_database()
        configure_django()
        ping_redis()
    except Exception as exc:  # a server is missing: say which, without a traceback
        print(f"bench_core: cannot set up the benchmark: {exc}", file=sys.stderr)
        return 2
    profiles: list[str] | None = [] if args.profile else None
    try:
        results = run(args.ops, args.rounds, db_ops, profiles)
    finally:
        cleanup()
    print_table(results, args.ops, args.rounds, db_ops)
    for text in profiles or ():
        print()
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
