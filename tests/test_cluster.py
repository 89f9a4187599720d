"""Redis Cluster (issue 14, item 1) beyond the contract suite: each atomic operation's keys are
in one slot, values spread over every master, and the listings (``backend.scan``,
``manage.py statekit``) visit every master. On the tests' own cluster (tests/redis_cluster.py)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from statekit import GlobalState, SessionState
from statekit.backends import StateKey
from statekit.keys import bury
from tests.conftest import CLUSTER_BACKENDS

pytestmark = pytest.mark.parametrize("backend", CLUSTER_BACKENDS, indirect=True)

OWNERS = 60


def test_cluster_keys_of_an_operation_share_a_slot_and_spread_over_masters(
    backend, name, redis_cluster
):
    cart = SessionState(name, default=list, ttl=600)
    for i in range(OWNERS):
        cart.set(f"owner{i}", [i])
    keys = backend.keys
    node = redis_cluster.node(redis_cluster.masters()[0])
    masters = set()
    for i in [*range(OWNERS), None]:
        key = StateKey("global", "", name) if i is None else StateKey("session", f"owner{i}", name)
        names = [keys.key(key), keys.index(key), keys.key(bury(key))]
        slots = {node.execute_command("CLUSTER KEYSLOT", n) for n in names}
        assert len(slots) == 1, names
        masters.add(redis_cluster.master_of(keys.key(key)))
    assert masters == set(redis_cluster.masters())


def test_cluster_listings_visit_every_master(backend, name):
    GlobalState(name, default=0).set(1)
    cart = SessionState(name + "s", default=list)
    for i in range(OWNERS):
        cart.set(f"owner{i}", [i])
    assert len(list(backend.scan(name=name + "s"))) == OWNERS
    out = io.StringIO()
    call_command("statekit", "export", stdout=out, stderr=io.StringIO())
    assert out.getvalue().count(f'"{name}s"') == OWNERS
    assert out.getvalue().count(f'"{name}"') == 1
