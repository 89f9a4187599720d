"""benchmarks/bench_scale.py still runs: a smoke run of a fraction of a second per cell, on
one Redis and on a Redis Cluster (issue 14, item 5). It prints figures; nothing here asserts
on them."""

from __future__ import annotations

from tests.conftest import needs
from tests.test_bench_http import run_bench

STORES = ["redis", "cluster"]

pytestmark = needs("cluster")  # redis-server and redis-cli, for its own Redis and cluster


def test_quick_run_prints_a_row_per_store_and_workload() -> None:
    out = run_bench("--stores", ",".join(STORES), script="benchmarks/bench_scale.py")
    rows = [line.split() for line in out.splitlines()]
    table = {(row[0], row[1]): row[2:] for row in rows if len(row) == 6}
    for store in STORES:
        for workload in ("counter", "session"):
            one, two, scaling, _errors = table[store, workload]
            assert float(one.replace(",", "")) > 0 and float(two.replace(",", "")) > 0, out
            assert scaling.endswith("x"), out
    assert [row[:2] for row in rows if row[:1] == ["cluster/redis"]] == [
        ["cluster/redis", "counter"],
        ["cluster/redis", "session"],
    ], out
