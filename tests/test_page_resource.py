"""Page resources: one object per page load (a tab), closed with its page or its session,
through real requests (the session middleware, statekit's hooks, the close beacon's view)."""

from __future__ import annotations

import threading
import time

import pytest
from asgiref.sync import async_to_sync
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.http import HttpRequest, JsonResponse
from django.test import Client, RequestFactory
from django.urls import path

from statekit import PageState, page_resource, session_resource
from statekit.exceptions import BackendUnavailable, PageIdMissing
from statekit.lifecycle.pages import close, page_config
from statekit.lifecycle.resources import drain, sweep
from statekit.state.pages import FIELD, HEADER, new_page, verify
from tests import page_app
from tests.test_page_ids import ended_page, forgeries

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]

CLOSE = "/statekit/page/close/"


class Counter:
    """Something that cannot be serialized: a lock and a count."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


counters = page_resource(Counter)
per_session = session_resource(Counter)
OBJECTS: dict[int, Counter] = {}


def use(request: HttpRequest) -> JsonResponse:
    counter = counters.get(request)
    OBJECTS[id(counter)] = counter
    with counter.lock:
        counter.count += 1
    return JsonResponse({"id": id(counter), "count": counter.count})


async def ause(request: HttpRequest) -> JsonResponse:
    counter = await counters.aget(request)
    OBJECTS[id(counter)] = counter
    return JsonResponse({"id": id(counter), "count": counter.count})


def use_session(request: HttpRequest) -> JsonResponse:
    counter = per_session.get(request)
    OBJECTS[id(counter)] = counter
    return JsonResponse({"id": id(counter)})


urlpatterns = [
    path("use/", use),
    path("ause/", ause),
    path("use-session/", use_session),
    *page_app.urlpatterns,
]


def tab(client: Client) -> str:
    """A new page load's id, as {% statekit_js %} gives it."""
    return client.get("/chat/id/").json()["page"]


def use_from(client: Client, page: str, url: str = "/use/") -> dict:
    response = client.get(url, headers={HEADER: page})
    assert response.status_code == 200, response.content
    return response.json()


def closed(object_id: int) -> bool:
    drain()
    return OBJECTS[object_id].closed == 1


def test_page_resource_one_object_per_tab():
    client = Client()
    first, second = tab(client), tab(client)
    a = use_from(client, first)
    b = use_from(client, second)
    assert a["id"] != b["id"]
    assert use_from(client, first) == {"id": a["id"], "count": 2}  # its own, again
    assert use_from(client, first, "/ause/")["id"] == a["id"]
    assert use_from(client, second) == {"id": b["id"], "count": 2}


def test_page_resource_closed_by_its_own_tabs_beacon_only():
    client = Client()
    first, second = tab(client), tab(client)
    a, b = use_from(client, first)["id"], use_from(client, second)["id"]
    assert client.post(CLOSE, {FIELD: first}).status_code == 204
    assert closed(a) and not closed(b)
    assert use_from(client, second)["id"] == b
    reloaded = tab(client)  # the second tab reloads: a new page, a new object
    assert use_from(client, reloaded)["id"] not in (a, b)
    assert not closed(b)  # until the old page's beacon arrives
    client.post(CLOSE, {FIELD: second})
    assert closed(b)


def test_page_resource_closed_when_the_session_ends():
    client = Client()
    pages = [tab(client) for _ in range(3)]
    ids = [use_from(client, page)["id"] for page in pages]
    other = Client()
    kept = use_from(other, tab(other))["id"]
    before = len(counters)
    client.post("/logout/")  # flush(): every page of the session closes its object
    assert all(closed(i) for i in ids) and not closed(kept)
    assert len(counters) == before - 3


def test_page_resource_closed_when_the_session_expires_without_a_request():
    client = Client()
    page = tab(client)
    obj = use_from(client, page)["id"]
    Session.objects.filter(session_key=client.session.session_key).delete()  # clearsessions
    sweep()
    assert closed(obj)


def test_page_resource_follows_its_page_across_a_login():
    client = Client()
    page = tab(client)
    obj = use_from(client, page)["id"]
    session = use_from(client, page, "/use-session/")["id"]
    client.post("/login/")  # cycle_key(): a new session key, the same page
    assert use_from(client, page) == {"id": obj, "count": 2}
    client.post(CLOSE, {FIELD: page})  # the page's owner is now under the new key
    assert closed(obj)
    assert not closed(session)  # it lives as long as the session (or its ttl)


def test_page_resource_idle_past_its_ttl_is_closed():
    idle = page_resource(Counter, ttl=0.5)
    session = SessionStore()
    session.create()
    request = RequestFactory().get("/", headers={HEADER: new_page(fake(session))})
    request.session = session
    obj = idle.get(request)
    sweep()
    drain()
    assert not obj.closed
    time.sleep(0.7)
    sweep()
    drain()
    assert obj.closed and idle.get(request) is not obj


def fake(session: SessionStore) -> HttpRequest:
    request = RequestFactory().get("/")
    request.session = session
    return request


def test_page_resource_lru_bound_and_built_once_under_threads():
    bounded = page_resource(Counter, max_size=2)
    session = SessionStore()
    session.create()
    owners = [verify(session, new_page(fake(session))) for _ in range(3)]
    found: list[Counter] = []
    threads = [
        threading.Thread(target=lambda: found.append(bounded.get(owners[0]))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(obj) for obj in found}) == 1
    objs = [bounded.get(owner) for owner in owners]
    drain()
    assert [obj.closed for obj in objs] == [1, 0, 0] and len(bounded) == 2
    bounded.close(owners[1])  # closed now, on demand
    drain()
    assert objs[1].closed == 1 and bounded.get(owners[1]) is not objs[1]


@pytest.mark.parametrize("url", ["/use/", "/ause/"])
def test_page_resource_refused_page_ids_build_nothing_and_leave_no_session(url):
    _, stale = ended_page()
    owner = Client()
    foreign = tab(owner)
    mine = use_from(owner, foreign, url)["id"]
    sessions, built = Session.objects.count(), len(counters)
    for page_id in [stale, foreign, *forgeries(foreign)]:
        fresh = Client()
        assert fresh.get(url, headers={HEADER: page_id}).status_code == 400, page_id
        assert not fresh.cookies, page_id
    missing = Client()
    assert missing.get(url).status_code == 400  # no page id: PageIdMissing
    assert not missing.cookies
    assert Session.objects.count() == sessions and len(counters) == built
    assert use_from(owner, foreign, url)["id"] == mine


def test_page_resource_without_a_page_id_raises_page_id_missing():
    with pytest.raises(PageIdMissing):
        counters.get(fake(SessionStore()))
    with pytest.raises(PageIdMissing):
        async_to_sync(counters.aget)(fake(SessionStore()))


def test_page_resource_alone_gives_pages_a_page_id(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("statekit.lifecycle.pages.declared", lambda scope=None: [])  # no PageState
    session = SessionStore()
    config = page_config(fake(session))
    assert config is not None and config["closeUrl"] == CLOSE
    assert verify(session, config["id"])


def test_a_page_closed_while_the_store_is_down_still_closes_its_resources(name, settings):
    """The close beacon expires the page's state, which fails while the store is down; the
    page's objects live in this process's memory and close all the same."""
    PageState(name, default=0)
    session = SessionStore()
    session.create()
    page = new_page(fake(session))
    request = RequestFactory().get("/", headers={HEADER: page})
    request.session = session
    obj = counters.get(request)
    nowhere = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5},
    }
    settings.CACHES = {**settings.CACHES, "nowhere": nowhere}
    settings.STATEKIT = {"BACKEND": "cache", "CACHE_ALIAS": "nowhere"}
    with pytest.raises(BackendUnavailable):
        close(verify(session, page))
    drain()
    assert obj.closed == 1


def test_aget_builds_in_the_requests_own_thread():
    """Like Django's own async ORM calls: in the request's thread, whose database connection
    Django closes when the request ends (a pool thread's stayed open, and broken, forever)."""
    threads: list[int] = []
    pool = page_resource(lambda: threads.append(threading.get_ident()) or Counter())
    session = SessionStore()
    session.create()
    request = RequestFactory().get("/", headers={HEADER: new_page(fake(session))})
    request.session = session

    async def in_a_request():
        return await pool.aget(request)

    obj = async_to_sync(in_a_request)()  # its sync thread: this one
    assert threads == [threading.get_ident()] and pool.get(request) is obj
