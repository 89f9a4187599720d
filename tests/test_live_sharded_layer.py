"""Live updates across hosts (issue 14, item 3): the channel layer sharded over two Redis
servers of the test's own (channels-redis' ``hosts`` list), two server processes (Daphne and
uvicorn) with the state on the tests' Redis Cluster. A write through one server reaches a
websocket on the other, and so does a write from this process: the cluster's own pub/sub
carries them (statekit.streams), and the sharded layer, still configured, stays unused.

channels-redis (4.3) has no Redis Cluster client: its layer is spread with ``hosts``, over
plain Redis servers; the state can be on the cluster meanwhile, as here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from django.test import override_settings

from example_project.demo.state import visitors
from statekit.backends import get_backend
from tests.conftest import needs, unique_prefix
from tests.live_support import Server, fresh_layer, process_env, visit
from tests.redis_server import RedisServer
from tests.test_live_servers import next_value, reader

pytestmark = [*needs("cluster", "redis"), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def layer_shards() -> Iterator[list[RedisServer]]:
    servers = [RedisServer(), RedisServer()]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.close()


def test_sharded_layer_carries_writes_across_two_servers_with_state_on_the_cluster(
    layer_shards, redis_cluster
):
    prefix, channels = unique_prefix(), f"statekit-live-{uuid.uuid4().hex[:10]}"
    urls = [server.url for server in layer_shards]
    env = process_env(
        STATEKIT_TEST_CHANNELS_PREFIX=channels,
        STATEKIT_TEST_CHANNELS_URL=",".join(urls),
        STATEKIT_TEST_REDIS_CLUSTER=",".join(redis_cluster.startup_nodes),
        STATEKIT_TEST_KEY_PREFIX=prefix,
    )
    conf = {"BACKEND": "cache", "REDIS_CLUSTER": redis_cluster.startup_nodes}
    with override_settings(STATEKIT={**conf, "KEY_PREFIX": prefix}), ExitStack() as stack:
        one = stack.enter_context(Server(env, kind="daphne"))
        other = stack.enter_context(Server(env, kind="uvicorn"))
        layer = ("channels_redis.core.RedisChannelLayer",)
        stack.enter_context(fresh_layer(*layer, hosts=urls, prefix=channels))
        try:
            with reader(other) as ws:
                ws.send(json.dumps({"type": "watch", "id": 1, "name": "visitors"}))
                first = next_value(ws)
                for i in range(1, 6):  # a visit through one server: a write there
                    assert visit(one.url + "/visitors") == first + i
                    assert next_value(ws) == first + i
                visitors.incr(10)  # this process, on the same layer
                assert next_value(ws) == first + 15
                # The cluster's own pub/sub carried them: the channel layer is not used.
                assert sum(server.client().dbsize() for server in layer_shards) == 0
        finally:
            keys = get_backend().keys
            for names in list(keys.scan(f"{prefix}:*")):
                keys.redis.unlink(*names)
