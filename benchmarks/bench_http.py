"""statekit over HTTP, side by side with the raw operation and an empty view, in one run.

For each server (gunicorn sync workers, uvicorn async views) and worker count, one server per
backend (db on SQLite WAL and on PostgreSQL, cache, cached_db) plus one without
``StatekitMiddleware`` runs at once, and a load client of 16 keep-alive connections hits each
view in turn: ``GlobalState.incr()`` vs the raw increment ("floor"), ``SessionState.get()``
(with and without a ttl) vs Django's own session read, and an empty view with and without the
middleware. Every round visits every view (the order flips each round), so load from other
processes hits all alike; the median req/s over the rounds is reported.

    python benchmarks/bench_http.py [--seconds S] [--rounds R] [--workers 2,4]
        [--servers gunicorn,uvicorn] [--backends db-sqlite,db-postgres,cache,cached_db]
        [--prepare-threshold 5|none]
    python benchmarks/bench_http.py --quick --seconds 3      # a smoke run

Servers listen on 127.0.0.1 only. PostgreSQL databases of its own are created and dropped;
Redis db 13 is used under a per-run key prefix whose keys are deleted at the end. The
in-process figures (incr/get/set/update, 8 processes on one row) are bench_core.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/13"
PG = "host=127.0.0.1 port=5432 user=postgres"
RUN = uuid.uuid4().hex[:10]
PREFIX = f"statekit-bench-http-{RUN}"
BACKENDS = ["db-sqlite", "db-postgres", "cache", "cached_db"]
NEEDS = {"db-postgres": "postgres", "cache": "redis", "cached_db": "postgres+redis"}
PATHS = ["kit", "floor", "empty", "session", "session_ttl", "session_floor"]
PLAIN = "no-middleware"  # the server without StatekitMiddleware


@dataclass
class Cell:
    server: str
    workers: int
    backend: str
    path: str
    rates: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0


# -- the load client -------------------------------------------------------------------------


async def _client(port: int, request: bytes, deadline: float, counts: list[int]) -> None:
    """Send ``request`` again and again until ``deadline``, on one keep-alive connection
    (opened again when the server closes it, as gunicorn's sync workers do)."""
    reader = writer = None
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
            counts[0 if head.startswith(b"http/1.1 200") else 1] += 1
            if b"connection: close" in head:
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
            counts[1] += 1
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def load(
    port: int, path: str, seconds: float, clients: int, session: str | list[str]
) -> tuple[float, int]:
    """req/s of ``clients`` concurrent clients on ``path`` for ``seconds``, and the errors;
    client i carries ``session`` (or the i-th of the list, round robin)."""
    sessions = [session] if isinstance(session, str) else session
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sessionid={key}\r\n\r\n".encode()
        for key in sessions
    ]
    counts = [0, 0]  # 200 responses, errors

    async def main() -> float:
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(
            *(_client(port, requests[i % len(requests)], deadline, counts) for i in range(clients))
        )
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    return counts[0] / elapsed, counts[1]


# -- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(
    backend: str, tmp: Path, middleware: bool = True, prepare_threshold: str = "5"
) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.http_project.settings",
        "PYTHONPATH": str(ROOT),
        "BENCH_BACKEND": backend,
        "BENCH_MIDDLEWARE": "1" if middleware else "0",
        "BENCH_SQLITE": str(tmp / "bench.sqlite3"),
        "BENCH_PG_NAME": f"statekit_bench_http_{RUN}_{backend.replace('-', '_')}",
        "BENCH_REDIS_URL": REDIS_URL,
        "BENCH_PREFIX": PREFIX,
        "BENCH_PREPARE_THRESHOLD": prepare_threshold,
    }


@contextmanager
def server(kind: str, workers: int, env: dict[str, str], log: Path) -> Iterator[int]:
    """A gunicorn (WSGI) or uvicorn (ASGI) server on a free local port; yields the port."""
    port = free_port()
    if kind == "gunicorn":
        app = "benchmarks.http_project.wsgi:application"
        args = ["-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", app]
    else:  # uvicorn, with TCP_NODELAY on its connections (see uvicorn_nodelay.py)
        app = "benchmarks.http_project.asgi:application"
        args = [str(ROOT / "benchmarks" / "uvicorn_nodelay.py"), "--workers", str(workers)]
        args += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", app]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, *args, "--log-level", "warning"],
            cwd=ROOT,
            env={**env, "BENCH_SERVER": kind},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while load(port, "/empty/", 0.05, 1, "")[0] == 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- set-up and clean-up ---------------------------------------------------------------------


def missing(service: str) -> str | None:
    """Why ``service`` ("postgres", "redis" or both joined by +) cannot be used, or None."""
    for name in service.split("+"):
        port = 5432 if name == "postgres" else 6379
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError as exc:
            return f"{name} on 127.0.0.1:{port} does not answer ({exc})"
    return None


def postgres(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG} dbname=postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def prepare(backend: str, env: dict[str, str], stack: ExitStack) -> list[str]:
    """Create the backend's database (dropped when ``stack`` closes); the session keys
    (``BENCH_SESSIONS`` of them, default 1)."""
    if backend in ("db-postgres", "cached_db"):
        name = env["BENCH_PG_NAME"]
        postgres(f'CREATE DATABASE "{name}"')
        stack.callback(postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if backend in ("cache", "cached_db"):
        stack.callback(delete_redis_keys)
    args = [sys.executable, "-m", "benchmarks.http_project.prepare"]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"setting up {backend} failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout.split()


def delete_redis_keys() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter(match=f"*{PREFIX}*", count=1000):
        client.unlink(name)
    client.close()


# -- the run ---------------------------------------------------------------------------------


def measure(args: argparse.Namespace, backends: list[str], tmp: Path) -> list[Cell]:
    cells: list[Cell] = []
    with ExitStack() as stack:
        envs = {b: environment(b, tmp, prepare_threshold=args.prepare_threshold) for b in backends}
        sessions = {b: prepare(b, envs[b], stack) for b in backends}
        envs[PLAIN] = environment(
            backends[0], tmp, middleware=False, prepare_threshold=args.prepare_threshold
        )
        sessions[PLAIN] = sessions[backends[0]]
        for kind in args.servers:
            for workers in args.workers:
                with ExitStack() as running:
                    ports = {
                        b: running.enter_context(server(kind, workers, env, tmp / f"{b}.log"))
                        for b, env in envs.items()
                    }
                    group = [
                        Cell(kind, workers, b, p)
                        for b in ports
                        for p in (["empty"] if b == PLAIN else PATHS)
                    ]
                    cells += group
                    for r in range(args.rounds):
                        for cell in group if r % 2 == 0 else group[::-1]:
                            path = f"/{'a/' if kind == 'uvicorn' else ''}{cell.path}/"
                            rate, errors = load(
                                ports[cell.backend],
                                path,
                                args.seconds,
                                args.clients,
                                sessions[cell.backend],
                            )
                            cell.rates.append(rate)
                            cell.errors += errors
    return cells


def report(cells: list[Cell], args: argparse.Namespace, skipped: list[str]) -> None:
    print(
        f"statekit HTTP benchmark: median of {args.rounds} interleaved round(s) of "
        f"{args.seconds:g} s per view, {args.clients} keep-alive clients, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs (the client shares them), "
        f"PostgreSQL prepare_threshold {args.prepare_threshold}"
    )
    for line in skipped:
        print(f"skipped: {line}")
    by = {(c.server, c.workers, c.backend, c.path): c for c in cells}
    head = (
        f"{'server':<9}{'w':>2} {'backend':<12}{'incr r/s':>9}{'floor':>8}{'ratio':>7}"
        f"{'empty':>8}{'empty/no-mw':>12} {'sess':>7}{'sess ttl':>9}{'django':>8}"
        f"{'ratio':>7}{'ttl':>6}{'errors':>7}"
    )
    print()
    print(head)
    print("-" * len(head))
    for server, workers, backend, path in by:
        if path != "kit":
            continue
        rate = {p: by[(server, workers, backend, p)].rate for p in PATHS}
        plain = by[(server, workers, PLAIN, "empty")].rate
        errors = sum(
            by[(server, workers, b, p)].errors
            for b in (backend, PLAIN)
            for p in PATHS
            if (server, workers, b, p) in by
        )
        print(
            f"{server:<9}{workers:>2} {backend:<12}{rate['kit']:>9,.0f}{rate['floor']:>8,.0f}"
            f"{ratio(rate['kit'], rate['floor']):>7}{rate['empty']:>8,.0f}"
            f"{ratio(rate['empty'], plain):>12} {rate['session']:>7,.0f}"
            f"{rate['session_ttl']:>9,.0f}{rate['session_floor']:>8,.0f}"
            f"{ratio(rate['session'], rate['session_floor']):>7}"
            f"{ratio(rate['session_ttl'], rate['session_floor']):>6}{errors:>7}"
        )
    print()
    print(
        "ratio = statekit req/s / floor req/s (1.00x: statekit costs nothing on top); floor = "
        "the same view doing the raw operation\n(redis-py INCR; UPDATE ... RETURNING, plus a "
        "DEL on cached_db; Django's request.session read). empty/no-mw = the empty view with\n"
        "StatekitMiddleware / without it. uvicorn rows are async views (aincr, aget). "
        "On a loaded machine, compare ratios, not req/s."
    )


def ratio(kit: float, floor: float) -> str:
    return f"{kit / floor:.2f}x" if floor else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per view and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", default="2,4", help="worker counts, comma-separated")
    parser.add_argument("--servers", default="gunicorn,uvicorn")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--quick", action="store_true", help="1 round, 2 workers: a smoke run")
    parser.add_argument(
        "--prepare-threshold",
        default="5",
        help='PostgreSQL OPTIONS["prepare_threshold"] ("none": Django\'s default)',
    )
    args = parser.parse_args(argv)
    if args.prepare_threshold != "none" and not args.prepare_threshold.isdigit():
        parser.error("--prepare-threshold takes a number or none")
    try:
        args.workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error("--workers takes numbers, e.g. 2,4")
    args.servers = args.servers.split(",")
    wanted = args.backends.split(",")
    unknown = set(wanted) - set(BACKENDS) or set(args.servers) - {"gunicorn", "uvicorn"}
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    if args.quick:
        args.rounds, args.workers = 1, [2]
    if args.seconds <= 0 or args.rounds < 1 or args.clients < 1 or min(args.workers) < 1:
        parser.error("--seconds, --rounds, --clients and --workers must be positive")

    skipped, backends = [], []
    for backend in wanted:
        why = missing(NEEDS[backend]) if backend in NEEDS else None
        (skipped.append(f"{backend}: {why}") if why else backends.append(backend))
    if not backends:
        print(f"bench_http: no backend can run: {'; '.join(skipped)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="statekit-bench-http-") as tmp:
        try:
            cells = measure(args, backends, Path(tmp))
        except Exception as exc:  # a server or service failed: say which, no traceback
            print(f"bench_http: {exc}", file=sys.stderr)
            return 2
    report(cells, args, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
