"""Redis Cluster: ``STATEKIT["REDIS_CLUSTER"]`` names startup nodes, and the ``cache`` and
``cached_db`` backends keep their keys there with redis-py's own ``RedisCluster`` (and
``redis.asyncio.cluster.RedisCluster`` for the async twins), in place of the Redis behind
``CACHE_ALIAS``. How keys stay in one slot per operation: :mod:`statekit.backends.redis`.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from redis import Redis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    ClusterError,
    ConnectionError,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)

#: A cluster that cannot serve a slot now (no master for it, a failover under way): like a
#: Redis that cannot be reached.
CLUSTER_DOWN = (ClusterError, SlotNotCoveredError, TryAgainError)
SCHEMES = ("redis", "rediss")


def unreachable_cluster(exc: BaseException | None) -> bool:
    """Whether ``exc`` is redis-py's "no node of the cluster can be reached" (it raises the
    RedisClusterException of a misuse, from the ConnectionError)."""
    return isinstance(exc, RedisClusterException) and isinstance(exc.__cause__, ConnectionError)


def problem(setting: Any) -> str | None:
    """What is wrong with a ``REDIS_CLUSTER`` setting, or None."""
    if setting is None:
        return None
    if (
        not isinstance(setting, list | tuple)
        or not setting
        or not all(isinstance(url, str) for url in setting)
    ):
        return f'STATEKIT["REDIS_CLUSTER"] = {setting!r} is not a list of node URLs.'
    for url in setting:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises ValueError for a port out of range)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in SCHEMES or not parts.hostname:
            return f'STATEKIT["REDIS_CLUSTER"] holds {url!r}, not a redis:// URL of a node.'
    return None


def nodes_of(setting: Any) -> tuple[str, ...]:
    """The startup nodes of a ``REDIS_CLUSTER`` setting; () for none; ImproperlyConfigured
    (``statekit.E009``) for a wrong one."""
    if (wrong := problem(setting)) is not None:
        raise ImproperlyConfigured(wrong)
    return tuple(setting or ())


def shown(nodes: tuple[str, ...]) -> str:
    """The nodes for a message: host and port only (a URL may hold a password)."""
    return ", ".join(f"{urlsplit(url).hostname}:{urlsplit(url).port or 6379}" for url in nodes)


def _addresses(nodes: tuple[str, ...]) -> list[tuple[str, int]]:
    return [(urlsplit(url).hostname or "", urlsplit(url).port or 6379) for url in nodes]


@cache
def cluster_client(nodes: tuple[str, ...]) -> RedisCluster:
    """The client of the cluster (one per process: it keeps the slot map). The first URL's
    options (credentials, TLS, ``?socket_timeout=``) apply to every node."""
    first, *others = nodes
    more = [
        ClusterNode(host, port)  # type: ignore[no-untyped-call]  # redis-py: unannotated
        for host, port in _addresses(tuple(others))
    ]
    return RedisCluster.from_url(first, startup_nodes=more)


def async_cluster_client(nodes: tuple[str, ...]) -> AsyncRedisCluster:
    """A redis.asyncio client of the cluster, for one event loop."""
    first, *others = nodes
    more = [AsyncClusterNode(host, port) for host, port in _addresses(tuple(others))]
    return AsyncRedisCluster.from_url(first, startup_nodes=more)


def server_id(client: Redis | RedisCluster) -> str | None:
    """Which server(s) hold the data: Redis's ``run_id``; on a cluster, a digest of its
    masters' (a failover or a restarted master changes it). None if INFO is disabled."""
    try:
        if isinstance(client, RedisCluster):
            infos = client.info("server", target_nodes=RedisCluster.PRIMARIES)
            if "run_id" in infos:  # one master: its reply, not one per node
                infos = {"": infos}
            ids = sorted(str(info["run_id"]) for info in infos.values())
            return hashlib.sha1("".join(ids).encode()).hexdigest()
        return str(client.info("server")["run_id"])
    except CLUSTER_DOWN:
        raise
    except (ResponseError, KeyError):  # INFO renamed or disabled (managed Redis)
        return None
