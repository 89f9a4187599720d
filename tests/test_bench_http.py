"""benchmarks/bench_http.py still runs: a smoke run of a fraction of a second per view (issue 12,
item 6). It prints figures; nothing here asserts on them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import needs

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*args: str, script: str = "benchmarks/bench_http.py") -> str:
    """The output of a smoke run of ``script`` (--quick, 0.3 s per cell)."""
    done = subprocess.run(
        [sys.executable, script, "--quick", "--seconds", "0.3", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize(
    "backends",
    [
        pytest.param(["db-sqlite"], id="sqlite"),
        pytest.param(
            ["db-postgres", "cache", "cached_db"], id="servers", marks=needs("postgres", "redis")
        ),
    ],
)
def test_quick_run_prints_every_row(backends: list[str]) -> None:
    out = run_bench("--backends", ",".join(backends))
    assert "skipped" not in out, out
    for backend in backends:
        rows = [line.split() for line in out.splitlines() if f" {backend} " in line]
        assert [(r[0], r[1]) for r in rows] == [("gunicorn", "2"), ("uvicorn", "2")], out
