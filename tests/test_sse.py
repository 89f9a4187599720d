"""Live state without Channels (issue 15, item 3): the Server-Sent Events view.

In process (Django's AsyncClient) for the access rules and the stream's form; on uvicorn with
two worker processes for changes crossing processes, on real Redis (cache) and PostgreSQL
(db), and for a client that goes away (its subscription is freed)."""

from __future__ import annotations

import json
import socket
import time
import uuid
from contextlib import aclosing
from typing import Any

import pytest
import redis
from django.contrib.sessions.backends.db import SessionStore
from django.db import connections
from django.test import AsyncClient, AsyncRequestFactory, RequestFactory, override_settings
from django.utils.html import escape

from statekit import GlobalState, PageState, SessionState
from statekit.backends import get_backend
from statekit.live import sse
from statekit.live.sse import events_view
from statekit.state import pages
from statekit.streams.feeds import hub
from tests.browser import watch_errors
from tests.conftest import BACKENDS, FEED_BACKENDS, needs
from tests.live_support import WATCH_VISITORS, Server, process_env, run, run_command, seen, visit
from tests.services import REDIS_DB, REDIS_HOST, REDIS_PORT
from tests.test_live_browser import INCR, REFUSED, chromium, shown

URL = "/statekit/events/"
CONFIGURED_EVENTS = "() => JSON.parse(document.getElementById('statekit-config').text).live.events"
CONFIGURED_EVENTS = "() => JSON.parse(document.getElementById('statekit-config').text).live.events"
TIMEOUT = 30  # a guard against a hang, not a measure


def parse(chunks: list[str]) -> list[tuple[str, Any]]:
    """``(event, data)`` of the events in ``chunks`` (comments and retry skipped)."""
    found = []
    for block in "".join(chunks).split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append((fields["event"], fields["data"]))
    return found


async def events(response: Any, count: int) -> list[tuple[str, Any]]:
    """Read the stream until ``count`` events came."""
    chunks: list[str] = []
    stream = response.streaming_content
    while len(parse(chunks)) < count:
        chunk = await stream.__anext__()
        chunks.append(chunk.decode() if isinstance(chunk, bytes) else chunk)
    return parse(chunks)


def session_client() -> tuple[AsyncClient, SessionStore]:
    session = SessionStore()
    session.create()
    client = AsyncClient()
    client.cookies["sessionid"] = session.session_key
    return client, session


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_sse_streams_the_value_then_changes(backend, name):
    visitors = GlobalState(name, default=0, public=True)
    visitors.set(4)

    async def scenario():
        response = await AsyncClient().get(URL, {"watch": f"global:{name}"})
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/event-stream")
        async with aclosing(response.streaming_content):
            first = await events(response, 1)
            await visitors.aset(5)
            return first + (await events(response, 1))

    assert run(scenario) == [(f"global:{name}", "4"), (f"global:{name}", "5")]
    assert hub().count() == 0  # the stream closed: nothing stays subscribed


@pytest.mark.django_db(transaction=True)
def test_sse_html_form_for_htmx_escapes_the_value(name):
    note = GlobalState(name, default="", public=True)
    note.set("<b>hi</b>")

    async def scenario():
        response = await AsyncClient().get(URL, {"watch": f"global:{name}", "format": "html"})
        async with aclosing(response.streaming_content):
            return await events(response, 1)

    assert run(scenario) == [(f"global:{name}", "&lt;b&gt;hi&lt;/b&gt;")]


@pytest.mark.django_db(transaction=True)
def test_sse_events_view_renders_fragments_of_your_own(name):
    cart = GlobalState(name, default=list, public=True)
    cart.set(["tea", "<jam>"])
    view = events_view(
        render=lambda variable, items: (
            "<ul>\n" + "".join(f"<li>{escape(i)}</li>\n" for i in items) + "</ul>"
        )
    )

    async def scenario():
        request = AsyncRequestFactory().get(URL, {"watch": f"global:{name}"})
        response = await view(request)
        async with aclosing(response.streaming_content):
            chunks = []
            async for chunk in response.streaming_content:
                chunks.append(chunk.decode())
                if "</ul>" in chunk.decode():
                    return "".join(chunks)

    text = run(scenario)  # one data: line per line of the fragment (htmx joins them)
    assert "data: <ul>\ndata: <li>tea</li>\ndata: <li>&lt;jam&gt;</li>\ndata: </ul>\n" in text


@pytest.mark.django_db(transaction=True)
def test_sse_streams_own_session_and_page_state(name):
    cart = SessionState(f"{name}.cart", default=list)
    chat = PageState(f"{name}.chat", default=list)
    client, session = session_client()
    page_id = pages.new_page(_request(session))
    owner = pages.verify(session, page_id)
    cart.set(session.session_key, ["tea"])
    chat.set(owner, ["hello"])

    async def scenario():
        query = {"watch": [f"session:{name}.cart", f"page:{name}.chat"], pages.FIELD: page_id}
        response = await client.get(URL, query)
        assert response.status_code == 200, response.content
        async with aclosing(response.streaming_content):
            return sorted(await events(response, 2))

    assert run(scenario) == [
        (f"page:{name}.chat", '["hello"]'),
        (f"session:{name}.cart", '["tea"]'),
    ]


def _request(session: SessionStore) -> Any:
    request = RequestFactory().get("/")
    request.session = session
    return request


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({}, 400, "invalid"),
        ({"watch": "visitors"}, 400, "invalid"),
        ({"watch": "galaxy:visitors"}, 400, "invalid"),
        ({"watch": ["global:{p}", "global:{p}"]}, 400, "duplicate"),
        ({"watch": "global:{name}.secret"}, 403, "refused"),
        ({"watch": "global:undeclared"}, 403, "refused"),
        ({"watch": "session:{name}.cart"}, 403, "refused"),  # no session
        ({"watch": "x" * 5000}, 400, "limit"),
    ],
)
def test_sse_refuses_what_the_websocket_refuses(name, query, status, code):
    GlobalState(f"{name}.secret", default=0)
    GlobalState(f"{name}.public", default=0, public=True)
    SessionState(f"{name}.cart", default=list)
    filled = json.loads(json.dumps(query).replace("{p}", f"{name}.public").replace("{name}", name))

    async def scenario():
        response = await AsyncClient().get(URL, filled)
        return response.status_code, json.loads(response.content)

    got_status, body = run(scenario)
    assert (got_status, body["code"]) == (status, code), body
    assert hub().count() == 0  # refused before anything was subscribed


@pytest.mark.django_db(transaction=True)
def test_sse_refuses_another_sessions_page_and_a_forged_page_id(name):
    PageState(f"{name}.chat", default=list)
    client, _ = session_client()
    other = SessionStore()
    other.create()
    theirs = pages.new_page(_request(other))

    async def scenario():
        found = []
        for page_id in (theirs, "forged.page.id"):
            query = {"watch": f"page:{name}.chat", pages.FIELD: page_id}
            response = await client.get(URL, query)
            found.append((response.status_code, json.loads(response.content)["code"]))
        return found

    assert run(scenario) == [(403, "refused"), (403, "refused")]
    assert hub().count() == 0


@pytest.mark.django_db(transaction=True)
def test_sse_watch_list_is_bounded(name):
    GlobalState(f"{name}.public", default=0, public=True)
    asked = [f"global:{name}.{i}" for i in range(3)]

    async def scenario():
        with override_settings(STATEKIT={"BACKEND": "db", "WS_MAX_WATCHES": 2}):
            response = await AsyncClient().get(URL, {"watch": asked})
        return response.status_code, json.loads(response.content)["code"]

    assert run(scenario) == (400, "limit")


# -- on uvicorn, two worker processes ----------------------------------------------------------


def _open_stream(server: Server, watch: str, cookie: str = "") -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    request = (
        f"GET {URL}?watch={watch} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        + "\r\n"
    )
    conn.sendall(request.encode())
    return conn


def _read_until(conn: socket.socket, wanted: str) -> None:
    """Read until ``wanted`` arrives (only the tail is kept: values may be large)."""
    seen = ""
    while wanted not in seen:
        chunk = conn.recv(65536)
        assert chunk, f"the stream ended before {wanted!r}: {seen[-500:]!r}"
        seen = seen[-len(wanted) :] + chunk.decode(errors="replace")


#: The same, for the tests that drive Chromium.
UVICORN_CHROMIUM = [
    pytest.param(p.values[0], id=p.id, marks=[*p.marks, *needs("chromium")]) for p in FEED_BACKENDS
]


@pytest.fixture(name="two_workers")
def two_workers_fixture(request):
    """uvicorn with two worker processes on the test's backend, serving the example project
    without Channels (tests/sse_asgi.py); yields (server, env)."""
    conf = {**request.param, "KEY_PREFIX": f"statekit-sse-{uuid.uuid4().hex[:10]}"}
    extra = {"STATEKIT_TEST_STATEKIT": json.dumps(conf), "STATEKIT_TEST_PLAIN_ASGI": "1"}
    if "postgres" in connections:
        extra["STATEKIT_TEST_POSTGRES_DB"] = str(connections["postgres"].settings_dict["NAME"])
    env = process_env(**extra)
    server = Server(env, kind="uvicorn", args=("--workers", "2"), app="tests.sse_asgi:application")
    with override_settings(STATEKIT=conf), server:
        yield server, env


@pytest.mark.parametrize("two_workers", UVICORN_CHROMIUM, indirect=True)
def test_sse_chromium_pages_watch_over_the_event_stream(two_workers):
    """No websocket route: statekit.js watches over EventSource, with the same API; a write
    in another process, and visits counted by either worker, reach both pages."""
    from playwright.sync_api import expect

    server, env = two_workers
    with chromium() as browser:
        pages_ = [browser.new_context().new_page() for _ in range(2)]
        errors = [e for page in pages_ for e in watch_errors(page)]
        for page in pages_:
            page.goto(server.url + "/visitors/")
            assert page.evaluate(CONFIGURED_EVENTS)  # no websocket route: the event stream
            page.evaluate(WATCH_VISITORS)
        first = max(shown(page) for page in pages_)
        run_command(env, INCR.format(5))
        for page in pages_:
            seen(page, first + 5)
            expect(page.locator("#visitors")).to_have_text(str(first + 5))
        for i in range(1, 4):  # either worker counts the visit
            assert visit(server.url + "/visitors") == first + 5 + i
            for page in pages_:
                seen(page, first + 5 + i)
        assert pages_[0].evaluate("statekit.live.status") == "open"
        refused = pages_[0].evaluate(REFUSED)
        assert refused == ["refused", "StatekitError"]
        run_command(env, INCR.format(1))  # the other watches stream on
        seen(pages_[0], first + 9)
        for page in pages_:
            page.close()
    assert not errors, errors


@pytest.mark.parametrize("two_workers", FEED_BACKENDS, indirect=True)
def test_sse_on_uvicorn_a_write_in_any_process_reaches_every_stream(two_workers):
    server, env = two_workers
    streams = [_open_stream(server, "global:visitors") for _ in range(4)]  # both workers
    try:
        for conn in streams:
            _read_until(conn, "event: global:visitors\ndata: 0")
        run_command(env, "from example_project.demo.state import visitors; visitors.set(41)")
        for conn in streams:
            _read_until(conn, "data: 41")
        visit(server.url + "/visitors")  # counted by one worker; every stream sees 42
        for conn in streams:
            _read_until(conn, "data: 42")
    finally:
        for conn in streams:
            conn.close()


@pytest.mark.parametrize("two_workers", [FEED_BACKENDS[0]], indirect=True)
def test_sse_a_client_that_goes_away_frees_its_subscription(two_workers):
    """Seen from Redis: the worker's one SUBSCRIBE ends with its last stream."""
    server, _ = two_workers
    channel = f"{get_backend().keys.prefix}:changes"
    client = redis.Redis(REDIS_HOST, REDIS_PORT, db=REDIS_DB)
    conn = _open_stream(server, "global:visitors")
    _read_until(conn, "data: 0")
    assert _subscribers(client, channel, until=1) == 1  # the feed subscribes in a thread
    conn.close()
    assert _subscribers(client, channel, until=0) == 0


@pytest.mark.parametrize(
    "two_workers", [p for p in FEED_BACKENDS if p.id == "db-postgres"], indirect=True
)
def test_sse_open_streams_hold_no_database_connection_each(two_workers):
    """Each stream's checks and reads ran in its request's thread, whose connection Django
    closes when the response ends: one PostgreSQL connection per open page. Now a worker holds
    its LISTEN connection and one for the reads of all its streams."""
    server, _ = two_workers
    database = connections["postgres"]
    streams = [_open_stream(server, "global:visitors") for _ in range(10)]
    try:
        for conn in streams:
            _read_until(conn, "event: global:visitors\ndata: ")
        with database.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                "pg_backend_pid()",
                [database.settings_dict["NAME"]],
            )
            held = cursor.fetchone()[0]
    finally:
        for conn in streams:
            conn.close()
    assert held <= 4, f"10 open streams hold {held} connections"


@pytest.mark.parametrize("two_workers", FEED_BACKENDS, indirect=True)
def test_sse_a_logout_in_one_process_ends_the_session_streams_of_both(two_workers):
    """The streams watch the session's old key: they end (the browser reconnects with its new
    session) in every process, not only in the one that served the logout."""
    from example_project.demo.state import cart

    server, _ = two_workers
    session = SessionStore()
    session.create()
    cart.set(session.session_key, ["tea"])
    cookie = f"sessionid={session.session_key}"
    streams = [_open_stream(server, "session:cart", cookie) for _ in range(4)]  # both workers
    try:
        for conn in streams:
            _read_until(conn, 'event: session:cart\ndata: ["tea"]')
        token = "a" * 32
        logout = (
            "POST /counter/end/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
            f"Cookie: {cookie}; csrftoken={token}\r\nX-CSRFToken: {token}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as conn:
            conn.sendall(logout.encode())
            assert conn.recv(100).startswith(b"HTTP/1.1 302")
        deadline = time.monotonic() + TIMEOUT
        for conn in streams:  # the response ends: its last chunk, or the connection closes
            tail = b""
            while not tail.endswith(b"0\r\n\r\n") and (chunk := conn.recv(65536)):
                tail = tail[-16:] + chunk
                assert time.monotonic() < deadline, "the stream did not end"
    finally:
        for conn in streams:
            conn.close()


def _subscribers(client: redis.Redis, channel: str, until: int) -> int:
    """How many subscribe to ``channel``, once that is ``until`` (or the guard ran out)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        found = dict(client.pubsub_numsub(channel))[channel.encode()]
        if found == until or time.monotonic() > deadline:
            return int(found)
        time.sleep(0.05)


@pytest.fixture
def one_worker():
    """uvicorn, one process (its memory is the server's), cache backend, no Channels."""
    conf = {"BACKEND": "cache", "CACHE_ALIAS": "redis"}
    conf["KEY_PREFIX"] = f"statekit-sse-{uuid.uuid4().hex[:10]}"
    env = process_env(STATEKIT_TEST_STATEKIT=json.dumps(conf), STATEKIT_TEST_PLAIN_ASGI="1")
    server = Server(env, kind="uvicorn", app="tests.sse_asgi:application")
    with override_settings(STATEKIT=conf), server:
        yield server


BIG = 100_000


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_sse_never_reading_clients_keep_the_server_memory_flat(one_worker):
    """Five clients that never read, 200 changes of 100 KB: each stream holds the latest
    value only (a backlog would be 100 MB)."""
    from example_project.demo.state import visitors

    server = one_worker
    visitors.set("start")
    warm = _open_stream(server, "global:visitors")  # load what a stream needs first
    _read_until(warm, "data: ")
    before = rss_mb(server)
    hostile = []
    for _ in range(5):
        conn = socket.socket()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.connect(("127.0.0.1", server.port))
        conn.sendall(f"GET {URL}?watch=global:visitors HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        hostile.append(conn)
    for i in range(200):
        visitors.set(f"{i}:" + "v" * BIG)
    _read_until(warm, 'data: "199:')  # the server has sent the last one
    peak = rss_mb(server)
    for conn in [*hostile, warm]:
        conn.close()
    print(f"\nSSE, 5 never-reading clients, 200 changes of 100 KB: +{peak - before:.0f} MB")
    assert peak - before < 40


def rss_mb(server: Server) -> float:
    assert server.process is not None
    with open(f"/proc/{server.process.pid}/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kb / 1024


@pytest.mark.django_db(transaction=True)
def test_sse_reconnection_resyncs_and_a_quiet_stream_gets_heartbeats(name, monkeypatch):
    """A browser reconnecting sends Last-Event-ID: it gets the current value again; then,
    with nothing changing, comment lines keep the stream alive."""
    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", 0.01)
    visitors = GlobalState(name, default=0, public=True)
    visitors.set(12)

    async def scenario():
        query = {"watch": f"global:{name}"}
        response = await AsyncClient().get(URL, query, headers={"Last-Event-ID": "41"})
        async with aclosing(response.streaming_content):
            chunks = []
            async for chunk in response.streaming_content:
                chunks.append(chunk.decode())
                if chunk.decode().startswith(": ping"):
                    return "".join(chunks)

    text = run(scenario)
    assert f"retry: {sse.RETRY_MILLISECONDS}" in text
    assert f"event: global:{name}\ndata: 12\n" in text
