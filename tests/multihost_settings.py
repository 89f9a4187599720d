"""Settings of the application hosts of tests/test_multihost.py: the example project on a
PostgreSQL database and a Redis that every host shares, as a deployment on several machines
has them: statekit on ``cached_db`` (the database is the truth, Redis the shared cache),
Django's sessions on ``cached_db`` over the same Redis (never a cache local to one process)
and no channel layer: live state crosses hosts on statekit's change streams (Redis pub/sub).

``STATEKIT_MH_PG_HOST``/``_PORT``/``_NAME``: the database; ``STATEKIT_MH_REDIS``: the Redis
URL; ``STATEKIT_MH_CLUSTER``: the startup nodes of a Redis Cluster (space-separated URLs)
that then holds statekit's state (and carries its changes), the Redis keeping Django's
sessions; ``STATEKIT_MH_PREFIX``: the keys of this run.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403

PREFIX = os.environ["STATEKIT_MH_PREFIX"]
REDIS_URL = os.environ["STATEKIT_MH_REDIS"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["STATEKIT_MH_PG_NAME"],
        "HOST": os.environ["STATEKIT_MH_PG_HOST"],
        "PORT": int(os.environ["STATEKIT_MH_PG_PORT"]),
        "USER": "postgres",
        "CONN_MAX_AGE": 0,  # under ASGI, a persistent connection per thread would pile up
    }
}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": PREFIX,
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
STATEKIT = {"BACKEND": "cached_db", "KEY_PREFIX": PREFIX}
if os.environ.get("STATEKIT_MH_CLUSTER"):
    STATEKIT["REDIS_CLUSTER"] = os.environ["STATEKIT_MH_CLUSTER"].split()
