"""Settings of the HTTP benchmark project, chosen by environment variables (bench_http.py sets
them for each server it starts):

- ``BENCH_BACKEND``: ``db-sqlite``, ``db-postgres``, ``cache`` or ``cached_db``; the session
  engine matches it (db, db, cache, cached_db);
- ``BENCH_MIDDLEWARE``: ``1`` (default) puts ``StatekitMiddleware`` in MIDDLEWARE, ``0`` not;
- ``BENCH_SERVER``: ``uvicorn`` gives PostgreSQL Django's connection pool (psycopg-pool);
- ``BENCH_SQLITE``, ``BENCH_PG_NAME``, ``BENCH_REDIS_URL``, ``BENCH_PREFIX``: where state goes
  (a SQLite file, a PostgreSQL database of the benchmark's own, a Redis db and key prefix);
- ``BENCH_REDIS_CLUSTER``: startup nodes (space-separated) of a Redis Cluster that holds
  statekit's state instead (Django's sessions stay in ``BENCH_REDIS_URL``).
"""

from __future__ import annotations

import os

BACKEND = os.environ.get("BENCH_BACKEND", "db-sqlite")
PREFIX = os.environ.get("BENCH_PREFIX", "statekit-bench-http")

SECRET_KEY = "statekit-bench-http"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
USE_TZ = True
ROOT_URLCONF = "benchmarks.http_project.urls"
WSGI_APPLICATION = "benchmarks.http_project.wsgi.application"
ASGI_APPLICATION = "benchmarks.http_project.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "statekit",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
]
if os.environ.get("BENCH_MIDDLEWARE", "1") == "1":
    MIDDLEWARE.append("statekit.middleware.StatekitMiddleware")

if BACKEND in ("db-sqlite", "cache"):  # "cache" keeps no state in its database
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_SQLITE", "bench_http.sqlite3"),
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
else:
    _threshold = os.environ.get("BENCH_PREPARE_THRESHOLD", "5")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("BENCH_PG_NAME", "statekit_bench_http"),
            "HOST": "127.0.0.1",
            "PORT": 5432,
            "USER": "postgres",
            "CONN_MAX_AGE": None,  # one connection per worker, as in production
            # Prepared statements, as a deployment sets them up (statekit.I010); "none":
            # Django's default. The floor's views use Django's cursor, which prepares nothing.
            "OPTIONS": {"prepare_threshold": None if _threshold == "none" else int(_threshold)},
        }
    }
    if os.environ.get("BENCH_SERVER") == "uvicorn":
        # Under ASGI each request runs its sync code in a thread of its own, so persistent
        # connections pile up (one per request until collected): Django's pool instead, as
        # its docs advise, small enough for a shared server (workers x 4 per database).
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 1, "max_size": 4}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "KEY_PREFIX": PREFIX,
    }
}
STATEKIT_BACKEND = {"db-sqlite": "db", "db-postgres": "db"}.get(BACKEND, BACKEND)
STATEKIT = {"BACKEND": STATEKIT_BACKEND, "KEY_PREFIX": "statekit"}
if os.environ.get("BENCH_REDIS_CLUSTER"):  # bench_scale.py: state on a Redis Cluster
    STATEKIT["REDIS_CLUSTER"] = os.environ["BENCH_REDIS_CLUSTER"].split()
SESSION_ENGINE = "django.contrib.sessions.backends." + STATEKIT_BACKEND
