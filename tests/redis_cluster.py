"""A Redis Cluster of a test run's own: three masters, each with one replica, on free local
ports; a test may kill a master and watch its replica take over.

Never the shared Redis: each node is a ``redis-server --cluster-enabled yes`` in a temporary
directory (no persistence: a replica holds the copy), joined by ``redis-cli --cluster create
... --cluster-replicas 1``. ``NODE_TIMEOUT_MS`` is how long the others wait before they fail a
silent master over to its replica.

Interface (other tests build on it, keep it stable):

- ``with RedisClusterServers() as servers:`` (or ``.start()``, ``.close()``); the pytest
  fixture ``redis_cluster`` (tests/conftest.py) gives one started cluster per test session.
- ``.startup_nodes``: ``["redis://127.0.0.1:<port>", ...]``, what ``STATEKIT["REDIS_CLUSTER"]``
  takes; ``.client()``: a redis-py ``RedisCluster`` on it.
- ``.masters()`` / ``.master_of(key)``: the ports of the masters now / of a key's slot;
  ``.kill(port)``, ``.restart(port)``: end a node (SIGKILL), start it again (it rejoins as a
  replica of whoever took over); ``.wait_ok()``: until every live node says ``cluster_state:ok``.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time

import redis
from redis.cluster import ClusterNode, RedisCluster

MASTERS = 3
NODE_TIMEOUT_MS = 2000


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int) -> list[int]:
    """``count`` distinct free ports below 30000 whose cluster bus ports (+10000) are free too.

    Below 30000, no node's port is another's bus port; distinct, no node is started on a port
    another already holds (its ``redis-server`` would exit and the other would answer)."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 29999)
        if port not in ports and _free(port) and _free(port + 10000):
            ports.append(port)
    return ports


class RedisClusterServers:
    def __init__(self, masters: int = MASTERS, host: str = "127.0.0.1") -> None:
        self.host = host  # the address the nodes listen on and announce
        self.ports = cluster_ports(masters * 2)
        self.dir = tempfile.mkdtemp(prefix="statekit-cluster-")
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.startup_nodes = [f"redis://{host}:{port}" for port in self.ports]

    def _spawn(self, port: int) -> None:
        command = ["redis-server", "--port", str(port), "--bind", self.host]
        command += ["--protected-mode", "no"]  # on a bridge of the test's own, if not loopback
        command += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
        home = os.path.join(self.dir, str(port))  # its own: a replica's sync writes a file
        os.makedirs(home, exist_ok=True)
        command += ["--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--dir", home]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        command += ["--logfile", "redis.log"]
        process = self.processes[port] = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                log = os.path.join(home, "redis.log")
                raise RuntimeError(f"redis-server on port {port} exited; see {log}")
            try:
                self.node(port).ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def __enter__(self) -> RedisClusterServers:
        """Started (closed again if it does not start), closed at the end of the block."""
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        for port in self.ports:
            self._spawn(port)
        command = ["redis-cli", "--cluster", "create"]
        command += [f"{self.host}:{port}" for port in self.ports]
        command += ["--cluster-replicas", "1", "--cluster-yes"]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        self.wait_ok()

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host=self.host, port=port, socket_timeout=2, socket_connect_timeout=2)

    def client(self) -> RedisCluster:
        nodes = [ClusterNode("127.0.0.1", port) for port in self.ports]
        return RedisCluster(startup_nodes=nodes, socket_timeout=2)

    def _info(self, port: int) -> dict[str, str]:
        info = self.node(port).execute_command("CLUSTER INFO")  # redis-py parses it
        return {str(k): str(v) for k, v in info.items()}

    def alive(self) -> list[int]:
        return [port for port, p in self.processes.items() if p.poll() is None]

    def wait_ok(self, timeout: float = 60) -> None:
        """Until every live node sees the cluster ok, with a master for every slot and each
        every live replica synced with its master."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                states = [self._info(port) for port in self.alive()]
                ok = all(
                    s.get("cluster_state") == "ok" and s.get("cluster_slots_ok") == "16384"
                    for s in states
                )
                if ok and len(self.masters()) == MASTERS and self._replicas_synced():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"Redis Cluster on {self.ports} is not ok after {timeout}s")
            time.sleep(0.05)

    def _replicas_synced(self) -> bool:
        """Whether every live replica has its master's data (else it cannot take over)."""
        for port in self.alive():
            info = self.node(port).info("replication")
            if info["role"] == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    def masters(self) -> list[int]:
        """The ports of the live masters that serve slots, as a live node sees them."""
        port = self.alive()[0]
        slots = self.node(port).execute_command("CLUSTER SLOTS")
        return sorted({int(entry[2][1]) for entry in slots} & set(self.alive()))

    def master_of(self, key: str) -> int:
        port = self.alive()[0]
        slot = self.node(port).execute_command("CLUSTER KEYSLOT", key)
        for start, end, master, *_ in self.node(port).execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        raise LookupError(f"no master serves the slot of {key!r}")

    def kill(self, port: int) -> None:
        process = self.processes[port]
        process.kill()
        process.wait()

    def restart(self, port: int) -> None:
        self._spawn(port)

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
