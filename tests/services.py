"""Which real servers the tests can reach, probed once per run.

A test that needs a missing server is skipped with the reason, or fails when
``STATEKIT_REQUIRE_SERVICES=1`` (as in CI).
"""

from __future__ import annotations

import os
import shutil
import socket
from functools import cache
from typing import Any

REQUIRED = os.environ.get("STATEKIT_REQUIRE_SERVICES") == "1"

POSTGRES: dict[str, Any] = {  # DATABASES settings
    "HOST": os.environ.get("STATEKIT_TEST_PG_HOST", "127.0.0.1"),
    "PORT": int(os.environ.get("STATEKIT_TEST_PG_PORT", "5432")),
    "USER": os.environ.get("STATEKIT_TEST_PG_USER", "postgres"),
    "PASSWORD": os.environ.get("STATEKIT_TEST_PG_PASSWORD", ""),
}
REDIS_HOST = os.environ.get("STATEKIT_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("STATEKIT_TEST_REDIS_PORT", "6379"))
REDIS_DB = 9
CHROMIUM = os.environ.get("STATEKIT_TEST_CHROMIUM", "/usr/bin/chromium")


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


@cache
def missing(service: str) -> str | None:
    """Why ``service`` ("postgres", "redis", "cluster", "chromium") cannot be used, or None."""
    if service == "postgres" and not _answers(POSTGRES["HOST"], POSTGRES["PORT"]):
        return f"PostgreSQL does not answer on {POSTGRES['HOST']}:{POSTGRES['PORT']}"
    if service == "redis" and not _answers(REDIS_HOST, REDIS_PORT):
        return f"Redis does not answer on {REDIS_HOST}:{REDIS_PORT}"
    if service == "cluster" and not (shutil.which("redis-server") and shutil.which("redis-cli")):
        return "redis-server and redis-cli (a Redis Cluster of the tests' own) are not installed"
    if service == "chromium" and not shutil.which(CHROMIUM):
        return f"Chromium is not installed at {CHROMIUM}"
    return None


def usable(service: str) -> bool:
    """Whether tests of ``service`` run: it answers, or CI requires it anyway."""
    return REQUIRED or missing(service) is None
