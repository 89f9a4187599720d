"""benchmarks/bench_scale.py still runs: a smoke run of a fraction of a second per cell, on
each store (issue 14, item 5). It prints figures; nothing here asserts on them."""

from __future__ import annotations

import subprocess
import sys

from tests.test_bench_http import ROOT

STORES = ["redis"]


def test_quick_run_prints_a_row_per_store_and_workload() -> None:
    command = [sys.executable, "benchmarks/bench_scale.py", "--quick", "--seconds", "0.3"]
    done = subprocess.run(
        [*command, "--stores", ",".join(STORES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines()]
    table = {(row[0], row[1]): row[2:] for row in rows if len(row) == 6}
    for store in STORES:
        for workload in ("counter", "session"):
            one, two, scaling, _errors = table[store, workload]
            assert float(one.replace(",", "")) > 0 and float(two.replace(",", "")) > 0
            assert scaling.endswith("x"), done.stdout
