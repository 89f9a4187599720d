"""statekit's async path side by side with raw redis.asyncio, in one run and one event loop.

    redis.asyncio ``INCR`` vs ``await GlobalState.aincr()`` on the "cache" backend,
    with 1 task and with 16 concurrent tasks

The raw client is a redis.asyncio client on the same Redis; statekit uses its own client of
the running loop (built from the cache alias's settings). Within each round raw and statekit
alternate every 50 calls per task (who goes first flips each time); the median ops/s over
the rounds is reported, with the ratio. A ratio below its target is reported, never turned
into a failure.

    python benchmarks/bench_async.py [--ops N] [--rounds R]

Needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (the setup of bench_core).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench_core import (
    CACHE_PREFIX,
    CHUNK,
    REDIS_URL,
    TARGET,
    Result,
    backend,
    cleanup,
    configure_django,
    create_database,
    ping_redis,
)

TASKS = (1, 16)


async def timed(fn: Callable[[], Awaitable[Any]], ops: int, tasks: int) -> float:
    """Seconds taken by ``tasks`` concurrent tasks making ``ops`` calls of ``fn`` between them."""

    async def worker() -> None:
        for _ in range(ops // tasks):
            await fn()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return time.perf_counter() - start


async def compare(
    label: str,
    raw: Callable[[], Awaitable[Any]],
    kit: Callable[[], Awaitable[Any]],
    ops: int,
    rounds: int,
    tasks: int,
) -> Result:
    chunk = CHUNK * tasks
    await timed(raw, max(chunk, ops // 10), tasks)  # warm-up: connections, code paths
    await timed(kit, max(chunk, ops // 10), tasks)
    result = Result(label, "cache", [], [], TARGET)
    for _ in range(rounds):
        gc.collect()
        spent = {raw: 0.0, kit: 0.0}
        for i in range(max(1, ops // chunk)):
            for fn in (raw, kit) if i % 2 == 0 else (kit, raw):
                spent[fn] += await timed(fn, chunk, tasks)
        done = max(1, ops // chunk) * chunk
        result.raw.append(done / spent[raw])
        result.kit.append(done / spent[kit])
    return result


async def run(ops: int, rounds: int) -> list[Result]:
    from redis import asyncio as aredis

    from statekit import GlobalState

    counter = GlobalState("bench.acounter", default=0)
    raw_client = aredis.Redis.from_url(REDIS_URL, max_connections=64)
    name = f"{CACHE_PREFIX}:raw:acounter"
    results = []
    try:
        for tasks in TASKS:
            label = f"redis.asyncio INCR vs aincr(), {tasks:>2} task(s)"
            raw = lambda: raw_client.incr(name)  # noqa: E731
            results.append(await compare(label, raw, counter.aincr, ops, rounds, tasks))
    finally:
        await raw_client.aclose()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--ops", type=int, default=4000, help="ops per round and side")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (median)")
    args = parser.parse_args(argv)
    if args.ops < 1 or args.rounds < 1:
        parser.error("--ops and --rounds must be positive")
    try:
        create_database()
        configure_django()
        ping_redis()
    except Exception as exc:  # a server is missing: say which, without a traceback
        print(f"bench_async: cannot set up the benchmark: {exc}", file=sys.stderr)
        return 2
    try:
        with backend("cache"):
            results = asyncio.run(run(args.ops, args.rounds))
    finally:
        cleanup()
    print(
        f"statekit async benchmark: median of {args.rounds} interleaved rounds, Redis {REDIS_URL}"
    )
    for r in results:
        spread = r.round_ratios
        verdict = "PASS" if r.ratio >= TARGET else "below"
        print(
            f"{r.label}: raw {statistics.median(r.raw):>8,.0f} ops/s, statekit "
            f"{statistics.median(r.kit):>8,.0f} ops/s, ratio {r.ratio:.2f}x "
            f"(rounds {min(spread):.2f}-{max(spread):.2f}x), target >={TARGET:.2f}x {verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
