"""Settings of the test suite: SQLite as "default", PostgreSQL as "postgres", Redis as "redis"."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.services import POSTGRES, REDIS_DB, REDIS_HOST, REDIS_PORT, usable

SECRET_KEY = "statekit-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "statekit",
    "example_project.demo",
    "tests.browser_app",  # pages for the browser tests (their URLs: tests.browser_app.urls)
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "statekit.middleware.StatekitMiddleware",
]
ROOT_URLCONF = "example_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "static/"

# The SQLite test database is a file, so the processes of the concurrency tests share it;
# one per test run, so runs side by side do not meet.
_SQLITE_FILE = Path(tempfile.gettempdir()) / f"statekit-tests-{os.getpid()}.sqlite3"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _SQLITE_FILE,
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
        "TEST": {"NAME": _SQLITE_FILE},
    }
}
if usable("postgres"):
    DATABASES["postgres"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "statekit",
        **POSTGRES,
        "TEST": {"NAME": f"test_statekit_{os.getpid()}"},  # one per run, as for SQLite
    }

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "redis": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
        "KEY_PREFIX": "statekit-tests",
    },
}

STATEKIT = {"BACKEND": "db"}

# Live state (Channels): the in-memory layer. The server processes of the live tests run on
# tests/live_server_settings.py, which shares this run's database and a channels-redis layer.
ASGI_APPLICATION = "example_project.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
