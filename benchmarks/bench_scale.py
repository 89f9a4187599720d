"""How statekit's throughput over HTTP grows with worker processes, on one Redis and on a Redis
Cluster, measured side by side in one run (issue 14, item 5).

For each store and each worker count (1, 2, 4), one server of benchmarks/http_project runs
(uvicorn with async views by default; the "cache" backend, Django's sessions in the same
Redis), all at once. A load client of ``--clients`` keep-alive connections, spread over
``--client-procs`` processes and as many sessions, loads each in turn, in interleaved rounds
(the order flips each round), so load from other processes hits all alike:

- ``counter``: the visitor counter, ``GlobalState.incr()`` of one key (a hot key);
- ``session``: a session read/write mix, three ``SessionState.get()`` to one ``incr()``.

It prints the median req/s per configuration, the scaling ratio against one worker and, with
a cluster, cluster / one Redis. The client shares the machine's cores with the servers: the
ratios tell more than the req/s, and no ratio can pass the cores there are.

    python benchmarks/bench_scale.py [--seconds S] [--rounds R] [--workers 1,2,4]
        [--stores redis,cluster] [--server uvicorn|gunicorn] [--clients 32] [--client-procs 2]
    python benchmarks/bench_scale.py --quick --seconds 1     # a smoke run

Stores: ``redis``, one redis-server; ``cluster``, a Redis Cluster of three masters with a
replica each (statekit's state, hash-tagged by owner; Django's sessions stay on a
redis-server). Every Redis is the benchmark's own (free local ports, nothing saved), stopped
at the end; the SQLite files are in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench_http import ROOT, Cell, environment, free_port, load, prepare, ratio, server

sys.path.insert(0, str(ROOT))  # the tests' Redis Cluster, started as the tests start it
from tests.redis_cluster import RedisClusterServers

STORES = ["redis", "cluster"]
PATHS = {"counter": "kit", "session": "mix"}  # the views of benchmarks/http_project


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server of the benchmark's own; yields its URL."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--daemonize", "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            != b"PONG"
        ):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {port} did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(15)


@contextmanager
def store(name: str) -> Iterator[dict[str, str]]:
    """The environment entries that put a server on store ``name``: one redis-server, or a
    Redis Cluster (three masters with a replica each, tests/redis_cluster.py) for statekit's
    state and a redis-server for Django's sessions."""
    with redis_server() as url:
        if name == "redis":
            yield {"BENCH_REDIS_URL": url}
            return
        cluster = RedisClusterServers()
        try:
            cluster.start()
            yield {"BENCH_REDIS_URL": url, "BENCH_REDIS_CLUSTER": " ".join(cluster.startup_nodes)}
        finally:
            cluster.close()


def spread(
    port: int,
    path: str,
    seconds: float,
    args: argparse.Namespace,
    sessions: list[str],
    pool: ProcessPoolExecutor,
) -> tuple[float, int]:
    """req/s and errors of ``args.clients`` connections over ``args.client_procs`` processes."""
    procs = args.client_procs
    share = [args.clients // procs + (i < args.clients % procs) for i in range(procs)]
    futures = [
        pool.submit(load, port, path, seconds, n, sessions[i::procs] or sessions)
        for i, n in enumerate(share)
        if n
    ]
    done = [future.result() for future in futures]
    return sum(rate for rate, _ in done), sum(errors for _, errors in done)


def measure(args: argparse.Namespace, tmp: Path) -> list[Cell]:
    cells: list[Cell] = []
    prefix = "/a/" if args.server == "uvicorn" else "/"
    with ExitStack() as stack, ProcessPoolExecutor(args.client_procs) as pool:
        ports: dict[tuple[str, int], int] = {}
        sessions: dict[str, list[str]] = {}
        for name in args.stores:
            env = environment("cache", tmp) | stack.enter_context(store(name))
            env |= {
                "BENCH_SQLITE": str(tmp / f"{name}.sqlite3"),
                "BENCH_SESSIONS": str(args.clients),
            }
            sessions[name] = prepare("cache", env, stack)
            for workers in args.workers:
                log = tmp / f"{name}-{workers}.log"
                ports[name, workers] = stack.enter_context(server(args.server, workers, env, log))
        cells = [Cell(args.server, w, s, p) for s, w in ports for p in PATHS]
        for cell in cells:  # warm every worker up: connections, imports, first requests
            path = prefix + PATHS[cell.path] + "/"
            spread(ports[cell.backend, cell.workers], path, 0.3, args, sessions[cell.backend], pool)
        for r in range(args.rounds):
            for cell in cells if r % 2 == 0 else cells[::-1]:
                path = prefix + PATHS[cell.path] + "/"
                port = ports[cell.backend, cell.workers]
                rate, errors = spread(port, path, args.seconds, args, sessions[cell.backend], pool)
                cell.rates.append(rate)
                cell.errors += errors
    return cells


def report(cells: list[Cell], args: argparse.Namespace, load_before: float) -> None:
    print(
        f"statekit scaling benchmark: {args.server}, median of {args.rounds} interleaved "
        f"round(s) of {args.seconds:g} s per cell, {args.clients} keep-alive clients in "
        f"{args.client_procs} process(es), Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs shared with the client; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    by = {(c.backend, c.workers, c.path): c for c in cells}
    base = args.workers[0]
    head = f"{'store':<14}{'workload':<10}" + "".join(f"{f'{w} w r/s':>11}" for w in args.workers)
    head += "".join(f"{f'{w}w/{base}w':>8}" for w in args.workers[1:]) + f"{'errors':>8}"
    print()
    print(head)
    print("-" * len(head))
    for name in args.stores:
        for path in PATHS:
            row = [by[name, w, path] for w in args.workers]
            line = f"{name:<14}{path:<10}" + "".join(f"{c.rate:>11,.0f}" for c in row)
            line += "".join(f"{ratio(c.rate, row[0].rate):>8}" for c in row[1:])
            print(line + f"{sum(c.errors for c in row):>8}")
    if len(args.stores) > 1:
        first = args.stores[0]
        for name in args.stores[1:]:
            for path in PATHS:
                line = f"{f'{name}/{first}':<14}{path:<10}"
                line += "".join(
                    f"{ratio(by[name, w, path].rate, by[first, w, path].rate):>11}"
                    for w in args.workers
                )
                print(line)
    print()
    print(
        f"Nw/{base}w = req/s with N workers / req/s with {base}; cluster/redis = the cluster's "
        "req/s / one Redis's.\ncounter = GlobalState.incr() of one key; session = 3 "
        "SessionState.get() : 1 incr(), one session per client."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per cell and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--server", default="uvicorn", choices=["uvicorn", "gunicorn"])
    parser.add_argument("--quick", action="store_true", help="1 round, 1 and 2 workers")
    args = parser.parse_args(argv)
    try:
        args.workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error("--workers takes numbers, e.g. 1,2,4")
    args.stores = args.stores.split(",")
    unknown = set(args.stores) - set(STORES)
    if unknown:
        parser.error(f"unknown store(s): {', '.join(sorted(unknown))}; known: {STORES}")
    if args.quick:
        args.rounds, args.workers = 1, [1, 2]
    if min(args.seconds, args.rounds, args.clients, args.client_procs, *args.workers) <= 0:
        parser.error("--seconds, --rounds, --clients, --client-procs, --workers: positive")
    if shutil.which("redis-server") is None:
        print("bench_scale: redis-server is not installed", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="statekit-bench-scale-") as tmp:
        try:
            cells = measure(args, Path(tmp))
        except Exception as exc:  # a server or store failed: say which, no traceback
            print(f"bench_scale: {exc}", file=sys.stderr)
            return 2
    report(cells, args, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
