"""What a Redis Cluster failover costs statekit's "cache" backend (issue 14, item 2).

    python benchmarks/bench_failover.py [--rounds 3] [--threads 4]

Starts a cluster of its own (tests/redis_cluster.py: three masters with one replica each, on
free local ports, ``cluster-node-timeout`` NODE_TIMEOUT_MS), writes distinct session values
from several threads (each write a key of its own, owners spread over every master), kills
one master with SIGKILL, and keeps writing until the writes to its slots succeed again. Then
it reads back every write that was acknowledged. Per round it prints:

- the time from the kill to the last write that failed (BackendUnavailable), and to the first
  write to the dead master's slots that succeeded after they failed;
- the writes that failed (BackendUnavailable: nothing else may be raised), and all writes;
- acknowledged writes lost: acknowledged by the old master but missing after the failover
  (Redis replicates asynchronously; WAIT is not used).

Figures, not assertions: benchmarks are not tests (tests/test_cluster_failover.py is).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # statekit and tests/redis_cluster.py from this checkout

OWNERS = 64


def configure(nodes: list[str]) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="statekit-bench",
        USE_TZ=True,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.sessions", "statekit"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        STATEKIT={"BACKEND": "cache", "REDIS_CLUSTER": nodes, "KEY_PREFIX": "bench-failover"},
    )
    django.setup()


class Writer(threading.Thread):
    def __init__(self, number: int, stop: threading.Event) -> None:
        super().__init__()
        self.number, self.stop = number, stop
        self.acked: list[tuple[object, float]] = []  # (StateKey, when)
        self.failed: list[tuple[object, float]] = []
        self.errors: list[BaseException] = []

    def run(self) -> None:
        from statekit.backends import StateKey, get_backend
        from statekit.exceptions import BackendUnavailable

        backend = get_backend()
        i = 0
        while not self.stop.is_set():
            i += 1
            key = StateKey("session", f"w{self.number}o{i % OWNERS}", f"n{i}")
            try:
                backend.set(key, str(i), None)
                self.acked.append((key, time.monotonic()))
            except BackendUnavailable:
                self.failed.append((key, time.monotonic()))
            except Exception as exc:
                self.errors.append(exc)
                return


def one_round(cluster: Any, threads: int) -> dict[str, float]:
    from statekit.backends import get_backend

    backend = get_backend()
    stop = threading.Event()
    writers = [Writer(n, stop) for n in range(threads)]
    for writer in writers:
        writer.start()
    time.sleep(1.0)
    victim = cluster.masters()[0]
    on_victim = {  # the owners whose slot the victim serves
        owner
        for owner in {f"w{n}o{i}" for n in range(threads) for i in range(OWNERS)}
        if cluster.master_of(backend.keys.key(owner_key(owner))) == victim
    }
    killed = time.monotonic()
    cluster.kill(victim)
    deadline = killed + 120
    while time.monotonic() < deadline:
        time.sleep(0.2)
        back = [t for w in writers for k, t in w.acked if t > killed and k.owner in on_victim]
        if len(back) >= 50 or any(w.errors for w in writers):
            break
    time.sleep(0.5)
    stop.set()
    for writer in writers:
        writer.join()
    errors = [e for w in writers for e in w.errors]
    if errors:
        raise SystemExit(f"a write raised something else than BackendUnavailable: {errors[0]!r}")
    acked = [a for w in writers for a in w.acked]
    failed = [f for w in writers for f in w.failed]
    down = min((t for k, t in failed if k.owner in on_victim), default=killed)
    back = min((t for k, t in acked if t > down and k.owner in on_victim), default=deadline)
    lost = sum(1 for key, _ in acked if backend.get(key) is None)
    failing = [t for _, t in failed]
    for names in list(backend.keys.scan("bench-failover:*")):
        backend.keys.redis.unlink(*names)
    cluster.restart(victim)
    cluster.wait_ok()
    return {
        "failing_s": (max(failing) - killed) if failing else 0.0,
        "slots_back_s": back - killed,
        "failed": len(failed),
        "writes": len(acked) + len(failed),
        "lost": lost,
    }


def owner_key(owner: str) -> object:
    from statekit.backends import StateKey

    return StateKey("session", owner, "n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    from tests.redis_cluster import NODE_TIMEOUT_MS, RedisClusterServers

    cluster = RedisClusterServers()
    cluster.start()
    try:
        configure(cluster.startup_nodes)
        print(
            f"Redis Cluster: 3 masters + 3 replicas on 127.0.0.1, cluster-node-timeout "
            f"{NODE_TIMEOUT_MS} ms; {args.threads} writer threads; SIGKILL of one master"
        )
        header = f"{'round':>5} {'last failure (s)':>19} {'its slots back (s)':>19}"
        print(f"{header} {'failed':>7} {'writes':>7} {'acked lost':>10}")
        rows = []
        for n in range(1, args.rounds + 1):
            row = one_round(cluster, args.threads)
            rows.append(row)
            print(
                f"{n:>5} {row['failing_s']:>19.2f} {row['slots_back_s']:>19.2f} "
                f"{row['failed']:>7.0f} {row['writes']:>7.0f} {row['lost']:>10.0f}"
            )
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(
            f"{'median':>5} {med['failing_s']:>19.2f} {med['slots_back_s']:>19.2f} "
            f"{med['failed']:>7.0f} {med['writes']:>7.0f} {med['lost']:>10.0f}"
        )
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
