"""Settings of the processes the outage tests start: tests/settings.py on the run's
PostgreSQL test database and a Redis of the test's own, with the ``cached_db`` backend.

Environment: ``STATEKIT_TEST_PG_NAME`` (and ``STATEKIT_TEST_PG_PORT``, see tests/services.py),
``STATEKIT_TEST_REDIS_URL``, ``STATEKIT_TEST_BACKEND`` (default ``cached_db``),
``STATEKIT_TEST_PREFIX`` (statekit's ``KEY_PREFIX``) and ``STATEKIT_TEST_VARIABLE`` (the
global variable the URLconf, tests/outage_urls.py, declares).
"""

from __future__ import annotations

import os

from tests.services import POSTGRES
from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["STATEKIT_TEST_PG_NAME"],
        **POSTGRES,
    }
}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ["STATEKIT_TEST_REDIS_URL"],
        "KEY_PREFIX": "statekit-tests",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5},
    }
}
STATEKIT = {
    "BACKEND": os.environ.get("STATEKIT_TEST_BACKEND", "cached_db"),
    "KEY_PREFIX": os.environ["STATEKIT_TEST_PREFIX"],
}
ROOT_URLCONF = "tests.outage_urls"
