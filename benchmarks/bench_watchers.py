"""What one server process costs per watching page: memory per websocket and the rate at which
it delivers one change to every watcher (the per-process figures of the capacity model in the
README's deployment section).

One ASGI server process (daphne by default) serves the example project on channels-redis and
``cached_db`` (a redis-server of the benchmark's own, the SQLite file in a temporary
directory). For each count N, N websockets (in this process, asyncio) watch the visitor
counter as statekit.js does (each frame acknowledged); the server's RSS is read before and
after they connect. Then a visit (``GET /visitors/``, one ``incr()``) is timed until every
watcher has the new value, ``--rounds`` times; the median gives deliveries per second. The
clients share the machine's cores with the server: the rate is a lower bound.

    python benchmarks/bench_watchers.py [--watchers 250,1000] [--rounds 5]
        [--server daphne|uvicorn]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import urlopen

from bench_http import ROOT, free_port
from bench_scale import redis_server
from websockets.asyncio.client import ClientConnection, connect

COMMANDS = {
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p"],
    "uvicorn": ["-m", "uvicorn", "--ws", "websockets", "--lifespan", "off", "--port"],
}


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def visit(url: str) -> int:
    with urlopen(url + "/visitors/", timeout=30) as response:
        page = response.read().decode()
    return int(page.split('id="visitors">', 1)[1].split("<", 1)[0])


async def watcher(port: int, ready: asyncio.Queue[ClientConnection]) -> None:
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws/statekit/", origin=f"http://127.0.0.1:{port}", max_size=None
    )
    await ws.send(json.dumps({"type": "watch", "id": 1, "name": "visitors"}))
    await next_value(ws)
    await ready.put(ws)


async def next_value(ws: ClientConnection) -> int:
    frame = json.loads(await ws.recv())
    await ws.send(json.dumps({"type": "ack", "ack": frame["ack"]}))
    return int(frame["value"])


async def until(ws: ClientConnection, value: int) -> None:
    """Until ``ws`` has ``value`` (an older change may come first)."""
    while await next_value(ws) < value:
        pass


async def measure(url: str, port: int, pid: int, count: int, rounds: int) -> tuple[float, float]:
    """(KB of server memory per watcher, deliveries per second)."""
    before = rss_kb(pid)
    ready: asyncio.Queue[ClientConnection] = asyncio.Queue()
    for start in range(0, count, 50):  # 50 handshakes at a time, as pages arrive
        await asyncio.gather(*(watcher(port, ready) for _ in range(start, min(count, start + 50))))
    sockets = [ready.get_nowait() for _ in range(count)]
    await asyncio.sleep(1)
    per_watcher = (rss_kb(pid) - before) / count
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        value = await asyncio.to_thread(visit, url)
        await asyncio.gather(*(until(ws, value) for ws in sockets))
        times.append(time.perf_counter() - start)
    await asyncio.gather(*(ws.close() for ws in sockets))
    return per_watcher, count / statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--watchers", default="250,1000", help="counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--server", default="daphne", choices=list(COMMANDS))
    args = parser.parse_args(argv)
    try:
        counts = [int(n) for n in args.watchers.split(",")]
    except ValueError:
        parser.error("--watchers takes numbers, e.g. 250,1000")
    if min(*counts, args.rounds) < 1:
        parser.error("--watchers and --rounds must be positive")
    rows = []
    with redis_server() as redis_url, tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "PYTHONPATH": str(ROOT),
            "REDIS_URL": redis_url,
            "SQLITE_PATH": str(Path(tmp) / "db.sqlite3"),
        }
        migrate = [sys.executable, "manage.py", "migrate", "-v", "0"]
        subprocess.run(migrate, cwd=ROOT, env=env, check=True, timeout=120)
        for count in counts:
            port = free_port()
            command = [sys.executable, *COMMANDS[args.server], str(port)]
            log = (Path(tmp) / "server.log").open("ab")
            server = subprocess.Popen(
                [*command, "example_project.asgi:application"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                url = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 60
                while True:
                    try:
                        visit(url)
                        break
                    except OSError:
                        if server.poll() is not None or time.monotonic() > deadline:
                            print("bench_watchers: the server did not start", file=sys.stderr)
                            return 2
                        time.sleep(0.2)
                rows.append(
                    (count, *asyncio.run(measure(url, port, server.pid, count, args.rounds)))
                )
            finally:
                server.terminate()
                try:
                    server.wait(15)
                except subprocess.TimeoutExpired:  # uvicorn waits for its websockets' tasks
                    server.kill()
                    server.wait()
                log.close()
    print(
        f"one {args.server} process on channels-redis: median of {args.rounds} change(s) per "
        f"count; {os.cpu_count()} CPUs shared with the clients, load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    print()
    print(f"{'watchers':>9}{'KB each':>10}{'deliveries/s':>14}")
    for count, per_watcher, rate in rows:
        print(f"{count:>9}{per_watcher:>10.0f}{rate:>14,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
