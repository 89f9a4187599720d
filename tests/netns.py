"""Application hosts of a test's own: network namespaces on one bridge, or loopback addresses.

As root with iproute2 (``ip netns`` and veth), each host is a network namespace with a veth
into a bridge of the test's own; the bridge's address is the *gateway*, where the test's
services listen for the hosts. Where namespaces cannot be made, the hosts are 127.0.0.2,
127.0.0.3, ... and the gateway is 127.0.0.1: another address, not another network stack.

Namespaces, veths and the bridge are named after this process's id (``statekit-<pid>-<n>``,
``sk<pid>br``), removed when the context closes whatever happened, and those a killed run
left behind are removed by the next run (their process is gone).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

NETNS = "netns"
LOOPBACK = "loopback"
SUBNET = "10.231.{}.{}"  # a /24 of the test's own, on its own bridge only
NAMESPACE = re.compile(r"statekit-(\d+)-\d+")


@dataclass(frozen=True)
class Host:
    address: str
    namespace: str | None = None

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` run on this host (in its namespace)."""
        if self.namespace is None:
            return list(args)
        return ["ip", "netns", "exec", self.namespace, *args]


LOCALHOST = Host("127.0.0.1")


@dataclass(frozen=True)
class Network:
    mode: str  # NETNS or LOOPBACK
    gateway: str  # the address of the test's own machine, as the hosts reach it
    hosts: list[Host]


def ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@cache
def namespaces_missing() -> str | None:
    """Why network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no ip command (iproute2)"
    probe = f"statekit-probe-{uuid.uuid4().hex[:8]}"
    try:
        ip("netns", "add", probe)
        ip("link", "add", f"skp{probe[-8:]}", "type", "bridge")
    except RuntimeError as exc:
        return f"network namespaces do not work here: {exc}"
    finally:
        ip("link", "del", f"skp{probe[-8:]}", check=False)
        ip("netns", "del", probe, check=False)
    return None


@contextmanager
def network(mode: str, count: int = 2) -> Iterator[Network]:
    """``count`` hosts in ``mode`` (NETNS or LOOPBACK), removed at the end."""
    if mode == LOOPBACK:
        yield Network(LOOPBACK, "127.0.0.1", [Host(f"127.0.0.{2 + i}") for i in range(count)])
        return
    remove_left_behind()
    pid = os.getpid()
    subnet = free_subnet(pid)
    bridge = f"sk{pid}br"
    names = [f"statekit-{pid}-{i}" for i in range(count)]
    try:
        ip("link", "add", bridge, "type", "bridge")
        ip("addr", "add", f"{SUBNET.format(subnet, 1)}/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        hosts = []
        for i, name in enumerate(names):
            outside, inside = f"sk{pid}h{i}", f"sk{pid}n{i}"
            address = SUBNET.format(subnet, 10 + i)
            ip("netns", "add", name)
            ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", name)
            ip("link", "set", outside, "master", bridge, "up")
            ip("-n", name, "addr", "add", f"{address}/24", "dev", inside)
            ip("-n", name, "link", "set", inside, "up")
            ip("-n", name, "link", "set", "lo", "up")
            hosts.append(Host(address, name))
        yield Network(NETNS, SUBNET.format(subnet, 1), hosts)
    finally:
        remove(pid, names)


def free_subnet(pid: int) -> int:
    """A third octet for this run's /24 that no address or route of the machine uses."""
    used = ip("-4", "addr") + ip("-4", "route")
    for step in range(250):
        candidate = (pid + step) % 250 + 1
        if SUBNET.format(candidate, "") not in used:
            return candidate
    raise RuntimeError(f"no free /24 in {SUBNET.format('x', 0)}")


def remove(pid: int, names: Sequence[str]) -> None:
    """Stop what still runs in the namespaces (the test's own servers), then remove them,
    their veths and the bridge of run ``pid``."""
    for name in names:
        for found in ip("netns", "pids", name, check=False).split():
            try:
                os.kill(int(found), signal.SIGKILL)
            except ProcessLookupError:
                pass
        ip("netns", "del", name, check=False)
    ip("link", "del", f"sk{pid}br", check=False)


def remove_left_behind() -> None:
    """Remove the namespaces (and bridges) of runs whose process is gone."""
    stale: dict[int, list[str]] = {}
    for line in ip("netns", "list", check=False).splitlines():
        found = NAMESPACE.fullmatch(line.split()[0]) if line.strip() else None
        if found and not alive(int(found[1])):
            stale.setdefault(int(found[1]), []).append(found[0])
    for pid, names in stale.items():
        remove(pid, names)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
