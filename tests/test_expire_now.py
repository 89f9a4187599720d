"""``expire(key, 0)`` (the admin's and the command's "expire now", a kept bundle's end) makes a
value dead at once, on every backend (real servers): a read right after gets nothing, and a
cleanup right after claims it. The cache backend used to make it due 1 ms later (0 rounded up
to 1 ms, as "no ttl" is 0 for its scripts), so a read or cleanup in that millisecond missed it."""

from __future__ import annotations

from statekit.backends import StateKey
from statekit.cleanup import cleanup
from statekit.inspection import expire_now

TRIES = 30  # each try is a fresh chance to land in the same millisecond as the expiry


def test_expire_now_is_dead_at_once_and_claimed_by_the_next_cleanup(backend, name):
    keys = [StateKey("session", f"s{i}", name) for i in range(TRIES)]
    for key in keys:
        backend.set(key, '"here"', 600)
        expire_now(key)
        assert backend.get(key) is None
        assert backend.entry(key) is None or backend.entry(key).expired
        report = cleanup()
        assert report.expired == 1 and backend.entry(key) is None
    assert list(backend.scan(expired=None)) == []


def test_expire_zero_of_an_internal_value_leaves_nothing(backend, name):
    for i in range(TRIES):
        key = StateKey("browser", f"w{i}", name)
        backend.set(key, "{}", 600)
        backend.expire(key, 0)
        cleanup()  # (the cache backend does not count internal values in its report)
        assert backend.entry(key) is None
