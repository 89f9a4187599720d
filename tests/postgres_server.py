"""A PostgreSQL cluster of a test's own, which the test may stop and start (never the shared
server): ``initdb`` in a temporary directory, run as the ``postgres`` OS user on a free port."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time

import psycopg

from tests.live_support import free_port

BIN = "/usr/lib/postgresql/15/bin"


def available() -> str | None:
    """Why a cluster cannot be made here, or None."""
    if not os.path.exists(f"{BIN}/initdb"):
        return f"PostgreSQL's initdb is not in {BIN}"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres OS user to run a throwaway cluster"
    return None


class PostgresServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host  # the address it listens on (clients of its network may log in)
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="statekit-pg-")
        user = pwd.getpwnam("postgres")
        os.chown(self.dir, user.pw_uid, user.pw_gid)
        self.data = f"{self.dir}/data"
        self._as_postgres(f"{BIN}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres")
        with open(f"{self.data}/pg_hba.conf", "a") as hba:
            hba.write("host all all samenet trust\n")  # the hosts on the bridge of a test

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses={self.host}"
        self._as_postgres(
            f"{BIN}/pg_ctl", "-D", self.data, "-o", options, "-l", f"{self.dir}/log", "-w", "start"
        )

    def stop(self, mode: str = "immediate") -> None:
        """Stop; ``immediate``: like a crash, recovery replays the log at the next start."""
        self._as_postgres(f"{BIN}/pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host, port=self.port, user="postgres", dbname="postgres", autocommit=True
        )

    def wait_answering(self, timeout: float = 60) -> float:
        """Wait until a query succeeds; return that time (time.time())."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.connect() as conn:
                    conn.execute("SELECT 1")
                return time.time()
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def close(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.dir, ignore_errors=True)
