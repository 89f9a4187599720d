"""What one Redis shard (one core: Redis runs commands on one thread) does per second with the
commands statekit's ``cache`` backend sends, side by side with the raw command, in one run:
the per-shard figures of the capacity model in the README's deployment section.

``redis-benchmark`` (50 connections, pipelines of 16) sends each command to a redis-server of
the benchmark's own, in interleaved rounds; the median ops/s is printed:

- ``global incr``: what ``GlobalState.incr()`` of an integer sends: one ``INCRBY`` of one key
  (a hot key: the whole load on one slot, so on one shard whatever the cluster's size);
- ``session read``: ``SessionState.get()`` with a ttl: the READ script (the value, its due
  time in the expiry index, the sliding expiry moved) on 100,000 sessions, against ``GET``;
- ``session read 0``: the same without a ttl (the script reads, writes nothing);
- ``session write``: ``set()`` with a ttl: the SET script, against ``SET``;
- ``session incr``: ``incr()`` with a ttl: the INCR script, against ``INCRBY``.

    python benchmarks/bench_shard.py [--requests N] [--rounds R]     # ~20 s
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import subprocess
import sys

import redis
from bench_scale import redis_server

from statekit.backends import scripts

SESSIONS = 100_000
TTL_MS = "3600000"


def cases(sha: dict[str, str]) -> dict[str, tuple[list[str], list[str]]]:
    """name: (statekit's command, the raw command); __rand_int__ picks one of SESSIONS."""
    key, index, grave = "s:__rand_int__", "due", "grave:__rand_int__"
    return {
        "global incr": (["incrby", "visitors", "1"], ["incrby", "raw-visitors", "1"]),
        "session read": (
            ["evalsha", sha["READ"], "2", key, index, TTL_MS],
            ["get", "raw:__rand_int__"],
        ),
        "session read 0": (  # no ttl: nothing slides, nothing written
            ["evalsha", sha["READ"], "2", key, index, "0"],
            ["get", "raw:__rand_int__"],
        ),
        "session write": (
            ["evalsha", sha["SET"], "3", key, index, grave, '["x"]', TTL_MS],
            ["set", "raw:__rand_int__", '["x"]'],
        ),
        "session incr": (
            ["evalsha", sha["INCR"], "3", "n:__rand_int__", index, grave, "1", "0", TTL_MS],
            ["incrby", "raw-n:__rand_int__", "1"],
        ),
    }


def ops(port: int, command: list[str], requests: int) -> float:
    args = ["redis-benchmark", "-p", str(port), "-c", "50", "-P", "16", "-n", str(requests)]
    args += ["-r", str(SESSIONS), "--csv", *command]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=True)
    rows = list(csv.reader(done.stdout.splitlines()))
    return float(rows[-1][1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000, help="per command and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.rounds < 1:
        parser.error("--requests and --rounds must be positive")
    if shutil.which("redis-benchmark") is None:
        print("bench_shard: redis-benchmark is not installed", file=sys.stderr)
        return 2
    with redis_server() as url:
        client = redis.Redis.from_url(url)
        sha = {name: client.script_load(getattr(scripts, name)) for name in ("READ", "SET", "INCR")}
        port = int(client.connection_pool.connection_kwargs["port"])
        table = cases(sha)
        ops(port, table["session write"][0], SESSIONS * 2)  # most sessions hold a value
        ops(port, table["session write"][1], SESSIONS * 2)
        rates: dict[tuple[str, int], list[float]] = {}
        for r in range(args.rounds):
            for name in table if r % 2 == 0 else list(table)[::-1]:
                for side in (0, 1):
                    rate = ops(port, table[name][side], args.requests)
                    rates.setdefault((name, side), []).append(rate)
        client.close()
    print(
        f"one Redis shard: median of {args.rounds} round(s) of {args.requests:,} commands, "
        "redis-benchmark with 50 connections and pipelines of 16 on the same machine"
    )
    print()
    print(f"{'command':<15}{'statekit ops/s':>15}{'raw ops/s':>12}{'ratio':>8}")
    for name in table:
        kit, raw = (statistics.median(rates[name, side]) for side in (0, 1))
        print(f"{name:<15}{kit:>15,.0f}{raw:>12,.0f}{kit / raw:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
