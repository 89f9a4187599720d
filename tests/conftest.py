from __future__ import annotations

import uuid

import pytest
from django.core.cache import caches
from django.test import override_settings

from statekit.backends import get_backend
from statekit.signals import state_changed
from tests.redis_cluster import RedisClusterServers
from tests.services import REQUIRED, missing, usable

pytest_plugins = ["pytester"]  # tests/test_testing_plugin.py runs a user's tests


def needs(*services: str) -> list[pytest.MarkDecorator]:
    """Marks for a test of real ``services``: skipped with the reason when one is missing."""
    marks = [getattr(pytest.mark, s) for s in services]
    reasons = [missing(s) for s in services if not usable(s)]
    if reasons:
        marks.append(pytest.mark.skip(reason="; ".join(r for r in reasons if r)))
    return marks


def _backend(id_: str, conf: dict[str, str], services: tuple[str, ...], dbs: list[str]):
    db = pytest.mark.django_db(transaction=True, databases=dbs)
    return pytest.param(conf, id=id_, marks=[db, *needs(*services)])


#: The backend contract runs against each of these (real servers, never mocks).
BACKENDS = [
    _backend("db-sqlite", {"BACKEND": "db", "DATABASE": "default"}, (), ["default"]),
    _backend(
        "db-postgres",
        {"BACKEND": "db", "DATABASE": "postgres"},
        ("postgres",),
        ["default", "postgres"],
    ),
    _backend("cache", {"BACKEND": "cache", "CACHE_ALIAS": "redis"}, ("redis",), ["default"]),
    _backend(
        "cached_db",
        {"BACKEND": "cached_db", "DATABASE": "postgres", "CACHE_ALIAS": "redis"},
        ("postgres", "redis"),
        ["default", "postgres"],
    ),
]


#: The cluster's place in a backend's settings: the fixture puts the redis_cluster's nodes there.
CLUSTER = "<the redis_cluster fixture>"

#: The same on the tests' own Redis Cluster (ids with "cluster": ``pytest -k cluster``).
CLUSTER_BACKENDS = [
    _backend(
        "cache-cluster", {"BACKEND": "cache", "REDIS_CLUSTER": CLUSTER}, ("cluster",), ["default"]
    ),
    _backend(
        "cached_db-cluster",
        {"BACKEND": "cached_db", "DATABASE": "postgres", "REDIS_CLUSTER": CLUSTER},
        ("postgres", "cluster"),
        ["default", "postgres"],
    ),
]

#: For the contract, the atomicity and the cleanup tests: every backend, and the cluster.
ALL_BACKENDS = [*BACKENDS, *CLUSTER_BACKENDS]


def pytest_report_header(config: pytest.Config) -> str:
    state = {s: missing(s) or "answers" for s in ("postgres", "redis", "cluster", "chromium")}
    return f"statekit services (required={REQUIRED}): {state}"


def unique_prefix() -> str:
    return f"statekit-{uuid.uuid4().hex[:12]}"


def clear_redis_prefix(alias: str, prefix: str) -> None:
    client = caches[alias].client.get_client(write=True)
    for name in client.scan_iter(match=f"*{prefix}*", count=1000):
        client.unlink(name)


@pytest.fixture(scope="session")
def redis_cluster():
    """A Redis Cluster of the run's own (tests/redis_cluster.py), started at first use."""
    with RedisClusterServers() as servers:
        yield servers


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest):
    """Configure statekit for one backend of :data:`BACKENDS` (a test may parametrize it
    with :data:`ALL_BACKENDS`, indirect); yields the backend."""
    conf = {**request.param, "KEY_PREFIX": unique_prefix()}
    if conf.get("REDIS_CLUSTER") == CLUSTER:
        conf["REDIS_CLUSTER"] = request.getfixturevalue("redis_cluster").startup_nodes
    with override_settings(STATEKIT=conf):
        backend = get_backend()
        yield backend
    if backend.uses_cache:
        for names in list(backend.keys.scan(f"*{conf['KEY_PREFIX']}*")):
            backend.keys.redis.unlink(*names)


@pytest.fixture
def name() -> str:
    """A variable name no other test declares."""
    return f"v{uuid.uuid4().hex[:12]}"


@pytest.fixture
def state_changes():
    """The ``state_changed`` signals sent during the test: (scope, name, owner, new)."""
    seen = []

    def record(sender, *, scope, name, owner, new, **kwargs):
        seen.append((scope, name, owner, new))

    state_changed.connect(record, dispatch_uid="tests.changes")
    yield seen
    state_changed.disconnect(dispatch_uid="tests.changes")


#: The backends whose changes cross processes on a feed of their own (Redis pub/sub,
#: PostgreSQL LISTEN/NOTIFY), as settings for the servers of live and SSE tests.
FEED_BACKENDS = [
    pytest.param(
        {"BACKEND": "cache", "CACHE_ALIAS": "redis"},
        id="cache",
        marks=[pytest.mark.django_db(transaction=True), *needs("redis")],
    ),
    pytest.param(
        {"BACKEND": "db", "DATABASE": "postgres"},
        id="db-postgres",
        marks=[
            pytest.mark.django_db(transaction=True, databases=["default", "postgres"]),
            *needs("postgres"),
        ],
    ),
]
