"""Settings of the statekit example project.

With no environment it runs on SQLite (db.sqlite3, or the file ``SQLITE_PATH`` names) with the
"db" backend and needs no server. With ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL`` set, it
uses them: state on "cached_db".

It is an ASGI project (daphne's runserver): live state goes to the browsers over websockets,
through the in-memory channel layer, or channels-redis when ``REDIS_URL`` is set.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SECRET_KEY", "statekit-example-not-secret")
DEBUG = os.environ.get("DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "daphne",  # first: its runserver serves HTTP and websockets (ASGI_APPLICATION)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "statekit",
    "example_project.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Delivers BrowserState writes with each response (below any GZipMiddleware).
    "statekit.middleware.StatekitMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"
ASGI_APPLICATION = "example_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

SQLITE = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ.get("SQLITE_PATH") or BASE_DIR / "db.sqlite3",
    # WAL lets readers run beside the writer; IMMEDIATE avoids lock-upgrade deadlocks.
    "OPTIONS": {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    },
}
DATABASES = {
    "default": dj_database_url.parse(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else SQLITE
}

REDIS_URL = os.environ.get("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "statekit-example",
        }
    }
    # Live state reaches the browsers of every server process through Redis (pub/sub):
    # no channel layer is needed.
    STATEKIT = {"BACKEND": "cached_db"}
else:
    # One process (runserver): live state reaches its own websockets and event streams. With
    # several processes on SQLite, a channels-redis layer in CHANNEL_LAYERS would carry it.
    STATEKIT = {"BACKEND": "db"}

# The demos log what they do (e.g. session resources created and closed) to the console.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"example_project.demo": {"handlers": ["console"], "level": "INFO"}},
}

AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
