"""A Redis server of a test's own, which the test may kill, hang (SIGSTOP) or restart.

Never the shared Redis: each instance runs on a free port, with its data (an append-only
file synced at every write, so a killed server comes back with all it acknowledged) in a
temporary directory.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time

import redis

from statekit.backends import StateKey, get_backend
from statekit.backends.cached_db import COPY
from tests.live_support import free_port


def cached_copy(client: redis.Redis, name: str) -> tuple[int, str] | None:
    """``(epoch, text)`` of the copy of global ``name`` that cached_db keeps in ``client``'s
    Redis, or None."""
    raw = client.get(get_backend().keys.key(StateKey("global", "", name)))
    copy = COPY.match(raw) if raw else None
    return None if raw is None or copy is None else (int(copy[2]), raw[copy.end() :].decode())


class RedisServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host  # the address it listens on
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="statekit-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://{host}:{self.port}/0"

    def start(self, *, empty: bool = False) -> None:
        """Start (again); ``empty``: without the data of the previous run."""
        if empty:
            shutil.rmtree(self.dir)
            self.dir = tempfile.mkdtemp(prefix="statekit-redis-")
        command = ["redis-server", "--port", str(self.port), "--bind", self.host]
        command += ["--dir", self.dir, "--save", "", "--appendonly", "yes"]
        command += ["--appendfsync", "always", "--daemonize", "no"]
        command += ["--protected-mode", "no"]  # on a bridge of the test's own, if not loopback
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client().ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def snapshot(self) -> str:
        """A copy of the data as it is now (the append-only file is synced at each write)."""
        copy = tempfile.mkdtemp(prefix="statekit-redis-snapshot-")
        shutil.copytree(self.dir, copy, dirs_exist_ok=True)
        return copy

    def kill_and_restore(self, snapshot: str) -> None:
        """Kill the server and put back the data of ``snapshot``, for the next start."""
        self.kill()
        shutil.rmtree(self.dir)
        shutil.move(snapshot, self.dir)

    def client(self) -> redis.Redis:
        return redis.Redis(self.host, self.port, socket_timeout=1, socket_connect_timeout=1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
