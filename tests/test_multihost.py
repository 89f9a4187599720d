"""Several application hosts (issue 14, item 4): two servers of the example project, daphne on
host A and uvicorn on host B, each in a network namespace of its own (tests/netns.py; the
``loopback`` variant runs them on 127.0.0.2 and 127.0.0.3 instead, as where namespaces cannot
be made), sharing one PostgreSQL and one Redis, both the test's own and listening on the
bridge (the gateway) where the hosts reach them: statekit on ``cached_db``, Django's sessions
on ``cached_db``, and no channel layer (changes cross on Redis pub/sub). In the ``cluster``
variant statekit's state is on a Redis Cluster of the test's own (three masters, a replica
each) instead.

One browser session, no stickiness: a Python client carrying the session's cookies sends each
request to A or B at random, as a load balancer without affinity would; Chromium, with the
same cookies, is connected to B. The visitor counter stays exact under concurrent visits on
both, the session's cart and a page's chat history are the same whichever host answers, and
what is written on A reaches the page on B live.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.browser import launch_options, watch_errors
from tests.conftest import needs
from tests.live_support import ROOT, WATCH_VISITORS, Server, seen
from tests.netns import LOOPBACK, NETNS, Network, namespaces_missing, network
from tests.postgres_server import PostgresServer, available
from tests.redis_cluster import RedisClusterServers
from tests.redis_server import RedisServer
from tests.services import REQUIRED

pytestmark = [
    *needs("chromium"),
    pytest.mark.postgres,
    pytest.mark.skipif(not REQUIRED and available() is not None, reason=str(available())),
]

WHY = namespaces_missing()  # None where namespaces work; required as root in CI
NEEDS_NETNS = [pytest.mark.skip(reason=WHY)] if WHY and not REQUIRED else []
DEPLOYMENTS = [  # (hosts, where statekit's state is)
    pytest.param(NETNS, "redis", id="netns-redis", marks=NEEDS_NETNS),
    pytest.param(NETNS, "cluster", id="netns-cluster", marks=[*NEEDS_NETNS, *needs("cluster")]),
    pytest.param(LOOPBACK, "redis", id="loopback-redis"),
]
VISITS = 120  # concurrent visits of the counter, spread over both hosts
CART_ADDS = 40  # concurrent additions to the session's cart
MESSAGES = 10  # chat messages in order, then as many again at once
ITEMS = ["Cereal", "Milk", "Orange Juice", "Water"]  # the cart demo's


@dataclass
class Deployment:
    network: Network
    a: Server
    b: Server


@contextmanager
def deployment(mode: str, store: str) -> Iterator[Deployment]:
    """Two hosts of ``mode`` serving the example project on one database and one Redis,
    statekit's state in that Redis or (``store`` "cluster") in a Redis Cluster."""
    with ExitStack() as stack:
        net = stack.enter_context(network(mode))
        redis_server = RedisServer(host=net.gateway)  # the test's own, where the hosts reach it
        stack.callback(redis_server.close)
        redis_server.start()
        cluster = {}
        if store == "cluster":
            nodes = stack.enter_context(RedisClusterServers(host=net.gateway))
            cluster = {"STATEKIT_MH_CLUSTER": " ".join(nodes.startup_nodes)}
        database = PostgresServer(host=net.gateway)
        stack.callback(database.close)
        database.start()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.multihost_settings",
            "PYTHONPATH": str(ROOT),
            "STATEKIT_MH_PG_HOST": database.host,
            "STATEKIT_MH_PG_PORT": str(database.port),
            "STATEKIT_MH_PG_NAME": "postgres",
            "STATEKIT_MH_REDIS": redis_server.url,
            "STATEKIT_MH_PREFIX": f"statekit-mh-{uuid.uuid4().hex[:8]}",
            **cluster,
        }
        migrate = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
        done = subprocess.run(migrate, cwd=ROOT, env=env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        a = Server(env, kind="daphne", host=net.hosts[0]).start()
        stack.callback(a.stop)
        b = Server(env, kind="uvicorn", host=net.hosts[1]).start()
        stack.callback(b.stop)
        a.wait(60)
        b.wait(60)
        print(f"\nmultihost {net.mode}, {store}: A {a.url} daphne, B {b.url} uvicorn")
        yield Deployment(net, a, b)
        for server in (a, b):  # normal life is quiet
            server.log.seek(0)
            log = server.log.read().decode(errors="replace")
            assert "Traceback" not in log and "ERROR" not in log, log[-3000:]


class BrowserSession:
    """One browser session with no stickiness: each request goes to a host at random (or to
    ``to``) and carries every cookie any host set, as behind one site name."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self.cookies: dict[str, str] = {}
        self.hits: Counter[str] = Counter()
        self.random = random.Random(14)
        self.lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        to: Server | None = None,
    ) -> tuple[int, str]:
        with self.lock:
            server = to or self.random.choice(self.servers)
            self.hits[server.url] += 1
            cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        sent = {"Cookie": cookie, **(headers or {})}
        body = None
        if fields is not None:
            body = urlencode(fields, doseq=True)
            sent |= {"Content-Type": "application/x-www-form-urlencoded"}
            sent |= {"X-CSRFToken": self.cookies["csrftoken"]}
        url = urlsplit(server.url)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
        try:
            conn.request(method, path, body, sent)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for key, morsel in SimpleCookie(header).items():
                with self.lock:
                    self.cookies[key] = morsel.value
        return response.status, text

    def get(self, path: str, to: Server | None = None) -> str:
        status, text = self.request("GET", path, to=to)
        assert status == 200, (status, text[:500])
        return text


def visitors(page: str) -> int:
    found = re.search(r'id="visitors">(\d+)<', page)
    assert found, page[:2000]
    return int(found[1])


def cart(page: str) -> tuple[list[str], int]:
    """The cart demo's list and count, as the page shows them."""
    listed = re.search(r'<ul id="cart">(.*?)</ul>', page, re.S)
    count = re.search(r'id="cart-count">(\d+)<', page)
    assert listed and count, page[:2000]
    return re.findall(r"<li>(.*?)</li>", listed[1]), int(count[1])


def page_id(page: str) -> str:
    config = re.search(r'<script id="statekit-config" type="application/json">(.*?)</script>', page)
    assert config, page[:2000]
    return str(json.loads(config[1])["page"]["id"])


@pytest.mark.parametrize(("mode", "store"), DEPLOYMENTS)
def test_multihost_one_session_on_two_hosts_without_stickiness(mode, store):
    with deployment(mode, store) as deployed:
        a, b = deployed.a, deployed.b
        session = BrowserSession([a, b])
        session.get("/cart/")  # the session and the CSRF cookie
        assert {"sessionid", "csrftoken"} <= session.cookies.keys(), session.cookies

        # The visitor counter: exact after concurrent visits spread over both hosts.
        first = visitors(session.get("/visitors/"))
        with ThreadPoolExecutor(12) as pool:
            shown = list(pool.map(lambda _: visitors(session.get("/visitors/")), range(VISITS)))
        assert sorted(shown) == list(range(first + 1, first + VISITS + 1))  # none lost or twice
        assert visitors(session.get("/visitors/", to=a)) == first + VISITS + 1
        assert visitors(session.get("/visitors/", to=b)) == first + VISITS + 2

        # Session state: the cart, added to at once through both hosts, is whole on each.
        added = [ITEMS[i % len(ITEMS)] for i in range(CART_ADDS)]
        with ThreadPoolExecutor(12) as pool:
            statuses = list(
                pool.map(
                    lambda item: session.request("POST", "/cart/", {"items": [item]})[0], added
                )
            )
        assert statuses == [302] * CART_ADDS
        session.request("POST", "/cart/", {"items": ["Water"]}, to=b)  # the last write, alone
        added.append("Water")
        for server in (a, b):
            items, count = cart(session.get("/cart/", to=server))
            assert Counter(items) == Counter(added)
            assert items[-1] == "Water"
            assert count == len(added)  # the count on_change derives, after a quiet write

        # Page state: one tab's chat history, whichever host each message goes to.
        tab = page_id(session.get("/chat/"))
        said: list[str] = []

        def say(message: str, tab: str = tab) -> list[str]:
            status, text = session.request(
                "POST", "/chat/say/", {"message": message}, {"X-Statekit-Page": tab}
            )
            assert status == 200, text[:500]
            answer = json.loads(text)
            assert answer["current"] == message
            return list(answer["previous"])

        for i in range(MESSAGES):
            assert say(f"m{i}") == said[::-1]
            said.append(f"m{i}")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(say, [f"c{i}" for i in range(MESSAGES)]))
        history = say("last")[::-1]
        assert history[:MESSAGES] == said
        assert sorted(history[MESSAGES:]) == sorted(f"c{i}" for i in range(MESSAGES))
        assert say("hi", page_id(session.get("/chat/"))) == []  # another tab: its own history

        assert min(session.hits.values()) > 10 and len(session.hits) == 2, session.hits
        live_update_from_a_reaches_a_page_on_b(session, a, b, added)


def live_update_from_a_reaches_a_page_on_b(
    session: BrowserSession, a: Server, b: Server, in_cart: list[str]
) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_options())
        try:
            context = browser.new_context()  # the same session: its cookies, for host B
            context.add_cookies(
                [{"name": k, "value": v, "url": b.url} for k, v in session.cookies.items()]
            )
            shop = context.new_page()
            counter = context.new_page()
            errors = watch_errors(shop) + watch_errors(counter)
            shop.goto(b.url + "/cart/")
            items, count = cart(shop.content())
            assert Counter(items) == Counter(in_cart) and count == len(in_cart)  # the session's
            expect(shop.locator("#cart li")).to_have_count(count)
            counter.goto(b.url + "/visitors/")
            before = visitors(counter.content())
            assert counter.evaluate(WATCH_VISITORS) == before

            assert visitors(session.get("/visitors/", to=a)) == before + 1  # a visit on A
            seen(counter, before + 1)
            expect(counter.locator("#visitors")).to_have_text(str(before + 1))

            session.request("POST", "/cart/", {"items": ["Milk"]}, to=a)  # the session, on A
            expect(shop.locator("#cart li")).to_have_count(count + 1)
            expect(shop.locator("#cart li").last).to_have_text("Milk")
            expect(shop.locator("#cart-count")).to_have_text(str(count + 1))
            assert errors == []
        finally:
            browser.close()


def namespaces_and_links() -> str:
    return subprocess.run(
        "ip netns list; ip -o link", shell=True, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize("mode", [pytest.param(NETNS, id="netns", marks=NEEDS_NETNS)])
def test_multihost_namespaces_go_when_a_test_fails_or_its_run_is_killed(mode):
    with pytest.raises(RuntimeError), network(mode) as net:
        names = [host.namespace for host in net.hosts]
        assert all(f"{name} " in namespaces_and_links() for name in names)
        raise RuntimeError("the test failed")
    left = namespaces_and_links()
    assert not [name for name in names if f"{name} " in left], left
    assert f"sk{os.getpid()}br" not in left

    # A run killed with its namespaces up (and a server in one): the next run removes them.
    code = (
        "import os, subprocess\n"
        "from tests.netns import NETNS, network\n"
        "with network(NETNS) as net:\n"
        "    quiet = {'stdout': subprocess.DEVNULL, 'stderr': subprocess.DEVNULL}\n"
        "    subprocess.Popen(net.hosts[0].command(['sleep', '600']), **quiet)\n"
        "    print(os.getpid(), flush=True)\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    pid = killed.stdout.strip()
    assert killed.returncode == -9 and f"statekit-{pid}-0" in namespaces_and_links()
    with network(NETNS):
        left = namespaces_and_links()
        assert f"statekit-{pid}-" not in left and f"sk{pid}br" not in left, left
