"""The feeds that carry changes between processes, one :class:`~statekit.streams.hub.Hub`
subclass each, chosen by :func:`hub` from the configured backend:

- ``cache`` and ``cached_db``: Redis pub/sub on the cache's Redis or the Redis Cluster
  (:class:`RedisHub`; a cluster broadcasts a PUBLISH to every node), one channel per
  ``KEY_PREFIX``;
- ``db`` on PostgreSQL: ``LISTEN``/``NOTIFY`` (:class:`PostgresHub`) on a connection of the
  listener's own; a notification is sent when the write's transaction commits, in commit order;
- anything else (``db`` on SQLite, other databases and backends): the channel layer
  ``STATEKIT["CHANNEL_LAYER"]`` when ``CHANNEL_LAYERS`` has it as a network layer
  (channels-redis: :class:`~statekit.streams.layer.LayerHub`), else this process only
  (:class:`LocalHub`). Several processes then do not see each other's changes: a system check
  (statekit.I032) says so.

A message is ``[key, text]`` (JSON; text ``null`` for a deletion), or ``[key]`` alone when the
value is too large for a notification (PostgreSQL takes 8000 bytes): subscribers then read it.
Publishing never fails a write: a failure is logged once per outage, and the subscribers of
every process resync when their feed is back.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.db import connections

from statekit.backends import BaseBackend, get_backend
from statekit.conf import get_settings
from statekit.keys import StateKey, key_text
from statekit.streams.hub import Hub, message
from statekit.streams.layer import LayerHub, network_layer

#: The PostgreSQL channel of statekit's notifications.
CHANNEL = "statekit_changes"
#: Notifications over this many bytes carry the key only (PostgreSQL's limit is 8000).
MAX_NOTIFY_BYTES = 7900


class LocalHub(Hub):
    """Changes of this process only: no thread, no server."""

    shared: ClassVar[bool] = False

    def publish(self, key: StateKey, text: str | None) -> None:
        self.dispatch(key_text(key), text)


class RedisHub(Hub):
    """Redis pub/sub: ``PUBLISH`` after each write, one ``SUBSCRIBE`` per process."""

    def __init__(self, keys: Any) -> None:
        super().__init__()
        self.redis = keys.redis
        self.channel = f"{keys.prefix}:changes"

    def publish(self, key: StateKey, text: str | None) -> None:
        try:
            self.redis.publish(self.channel, message(key, text))
        except Exception as exc:
            self.failed("publish", exc)

    def listen(self, stop: Callable[[], bool]) -> None:
        pubsub = self.redis.pubsub()
        try:
            pubsub.subscribe(self.channel)
            while not stop():
                found = pubsub.get_message(timeout=0.5)
                if found is None:
                    continue
                if found["type"] == "subscribe":  # also after redis-py reconnected by itself
                    self.connected()
                elif found["type"] == "message":
                    self.received(found["data"])
        finally:
            pubsub.close()


class PostgresHub(Hub):
    """PostgreSQL ``NOTIFY`` in the writer's transaction, ``LISTEN`` on a connection of the
    listener thread's own (reconnected after a failure)."""

    def __init__(self, alias: str) -> None:
        super().__init__()
        self.alias = alias

    def publish(self, key: StateKey, text: str | None) -> None:
        payload = message(key, text)
        if len(payload.encode()) > MAX_NOTIFY_BYTES:
            payload = json.dumps([key_text(key)])
        try:
            with connections[self.alias].cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])
        except Exception as exc:
            self.failed("notify", exc)

    def listen(self, stop: Callable[[], bool]) -> None:
        database = connections[self.alias]
        connection = database.get_new_connection(database.get_connection_params())
        try:
            connection.autocommit = True
            connection.execute(f"LISTEN {CHANNEL}")
            self.connected()
            while not stop():
                for notify in connection.notifies(timeout=0.5):
                    self.received(notify.payload)
        finally:
            connection.close()


_lock = threading.Lock()
_hubs: dict[tuple[str, ...], Hub] = {}  # by what carries the changes
_by_backend: weakref.WeakKeyDictionary[BaseBackend, Hub] = weakref.WeakKeyDictionary()


def _hub_of(backend: BaseBackend) -> tuple[tuple[str, ...], Callable[[], Hub]]:
    """What carries the changes of ``backend`` (the same for every backend object built
    from the same settings: one subscription per process), and how to make its hub."""
    keys = getattr(backend, "keys", None)
    if keys is not None and hasattr(keys, "redis"):  # cache, cached_db (a Redis Cluster too)
        pool = getattr(keys.redis, "connection_pool", None)  # where: host, port, database
        place = keys.where if pool is None else repr(pool)  # a cluster: its nodes
        return ("redis", place, keys.prefix), lambda: RedisHub(keys)
    alias = getattr(backend, "alias", None)
    if backend.uses_database and alias is not None:
        database = connections[alias]
        if database.vendor == "postgresql" and _psycopg3(database):
            where = repr(sorted(database.get_connection_params().items()))
            return ("postgres", alias, where), lambda: PostgresHub(alias)
    alias, prefix = get_settings()["CHANNEL_LAYER"], get_settings()["KEY_PREFIX"]
    layer = network_layer(alias)
    if layer is not None:
        return ("layer", repr(sorted(layer.items())), prefix), lambda: LayerHub(alias, prefix)
    return ("local",), LocalHub


def _psycopg3(database: Any) -> bool:
    return getattr(database.Database, "__name__", "") == "psycopg"


def hub() -> Hub:
    """This process's hub for the configured backend."""
    backend = get_backend()
    found = _by_backend.get(backend)
    if found is not None and found.pid == os.getpid():
        return found
    feed, make = _hub_of(backend)
    with _lock:
        found = _hubs.get(feed)
        if found is None or found.pid != os.getpid():  # a forked child starts its own
            found = _hubs[feed] = make()
        _by_backend[backend] = found
        return found


async def apublish(key: StateKey, text: str | None) -> None:
    """:meth:`Hub.publish` from async code (the network call runs in a thread)."""
    found = hub()
    if isinstance(found, LocalHub):
        found.publish(key, text)
    else:  # NOTIFY goes on the writer's database connection: its thread
        await sync_to_async(found.publish, thread_sensitive=isinstance(found, PostgresHub))(
            key, text
        )
