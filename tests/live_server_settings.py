"""Settings of the server processes the live tests start: tests/settings.py, on the test run's
database (``STATEKIT_TEST_DB``, the SQLite file) and, with ``STATEKIT_TEST_CHANNELS_PREFIX``,
on a channels-redis layer that every process of the test shares (on the test Redis, or on
``STATEKIT_TEST_CHANNELS_URL``: a Redis server of the test's own; several, comma-separated,
shard the layer), or with ``STATEKIT_TEST_NO_CHANNEL_LAYERS`` on none at all.
``STATEKIT_TEST_REDIS_CLUSTER`` (startup nodes, comma-separated) puts the
state on a Redis Cluster, under the key prefix ``STATEKIT_TEST_KEY_PREFIX``."""

from __future__ import annotations

import json
import os

from tests.services import REDIS_HOST, REDIS_PORT
from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

CHANNELS_REDIS_DB = 10  # Redis database of the channels-redis layers of the live tests

if os.environ.get("STATEKIT_TEST_PLAIN_ASGI"):  # no Channels: live state over SSE
    ASGI_APPLICATION = "tests.sse_asgi.application"
if os.environ.get("STATEKIT_TEST_STATEKIT"):  # the backend of the test (JSON), e.g. SSE's
    STATEKIT = json.loads(os.environ["STATEKIT_TEST_STATEKIT"])
if os.environ.get("STATEKIT_TEST_POSTGRES_DB"):  # the test run's PostgreSQL database
    DATABASES = {
        **DATABASES,
        "postgres": {**DATABASES["postgres"], "NAME": os.environ["STATEKIT_TEST_POSTGRES_DB"]},
    }
if os.environ.get("STATEKIT_TEST_DB"):
    DATABASES = {"default": {**DATABASES["default"], "NAME": os.environ["STATEKIT_TEST_DB"]}}
if os.environ.get("STATEKIT_TEST_POSTGRES_DB"):  # the test run's PostgreSQL database (SSE)
    from tests.settings import DATABASES as BASE

    DATABASES["postgres"] = {**BASE["postgres"], "NAME": os.environ["STATEKIT_TEST_POSTGRES_DB"]}
if os.environ.get("STATEKIT_TEST_NO_CHANNEL_LAYERS"):  # Channels as the websocket only
    CHANNEL_LAYERS: dict[str, object] = {}
if os.environ.get("STATEKIT_TEST_CHANNELS_PREFIX"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {"address": url, "socket_timeout": 10}
                    for url in (
                        os.environ.get("STATEKIT_TEST_CHANNELS_URL")
                        or f"redis://{REDIS_HOST}:{REDIS_PORT}/{CHANNELS_REDIS_DB}"
                    ).split(",")
                ],
                "prefix": os.environ["STATEKIT_TEST_CHANNELS_PREFIX"],
            },
        }
    }
if os.environ.get("STATEKIT_TEST_REDIS_CLUSTER"):
    STATEKIT = {
        "BACKEND": "cache",
        "REDIS_CLUSTER": os.environ["STATEKIT_TEST_REDIS_CLUSTER"].split(","),
        "KEY_PREFIX": os.environ["STATEKIT_TEST_KEY_PREFIX"],
    }
