"""Session resources: one object per session in this process, closed when it should be."""

from __future__ import annotations

import os
import threading
import time

import pytest
from asgiref.sync import async_to_sync
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client, RequestFactory, override_settings
from django.urls import path

from statekit import session_resource
from statekit.lifecycle.pages import close
from statekit.lifecycle.resources import drain, sweep
from statekit.state.pages import new_page, verify
from tests import lifecycle_app

pytestmark = pytest.mark.django_db(transaction=True)


class Model:
    """Something that cannot be serialized: a lock and a counter."""

    built = 0

    def __init__(self) -> None:
        Model.built += 1
        self.lock = threading.Lock()
        self.count = 0
        self.closed = False

    def close(self) -> None:
        self.closed = True


def request_for(session: SessionStore, page: str | None = None):
    request = RequestFactory().get("/", headers={"X-Statekit-Page": page} if page else {})
    request.session = session
    return request


def new_session() -> SessionStore:
    session = SessionStore()
    session.create()
    return session


def test_one_instance_per_session():
    models = session_resource(Model)
    alice, bob = new_session(), new_session()
    first = models.get(request_for(alice))
    assert models.get(request_for(alice)) is first
    assert models.get(request_for(bob)) is not first
    assert async_to_sync(models.aget)(request_for(alice)) is first


def test_built_once_under_threads():
    built = []

    def slow():
        time.sleep(0.05)
        built.append(1)
        return Model()

    models = session_resource(slow)
    session = new_session()
    found = []
    threads = [
        threading.Thread(target=lambda: found.append(models.get(request_for(session))))
        for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1 and len({id(obj) for obj in found}) == 1


def test_closed_when_idle_for_ttl():
    closed = []
    models = session_resource(Model, ttl=1.0, on_close=closed.append)
    session = new_session()
    obj = models.get(request_for(session))
    sweep()
    drain()
    assert closed == []
    time.sleep(1.2)
    sweep()
    drain()
    assert closed == [obj]
    assert models.get(request_for(session)) is not obj  # a new one on next use


def test_closed_when_the_session_ends_without_a_request():
    models = session_resource(Model)
    session = new_session()
    obj = models.get(request_for(session))
    session.delete()  # expiry or clearsessions
    sweep()
    drain()
    assert obj.closed


def test_a_page_closing_does_not_close_the_session_resource():
    """A navigation closes the old page (its beacon) before the new page asks: the model a
    session loaded must not be unloaded and loaded again on every click."""
    models = session_resource(Model)
    session = new_session()
    first, second = new_page(request_for(session)), new_page(request_for(session))
    obj = models.get(request_for(session, first))
    close(verify(session, first))  # the old page's beacon, before the next page's request
    drain()
    assert not obj.closed and models.get(request_for(session, second)) is obj
    close(verify(session, second))  # the session's last tab too: it lives on with its session
    drain()
    assert not obj.closed and len(models) == 1


def test_lru_bound_closes_what_it_evicts():
    models = session_resource(Model, max_size=2)
    sessions = [new_session() for _ in range(3)]
    objs = [models.get(request_for(s)) for s in sessions]
    drain()
    assert [o.closed for o in objs] == [True, False, False]
    assert len(models) == 2


def test_factory_errors_propagate_and_are_retried():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first build fails")
        return Model()

    models = session_resource(flaky)
    session = new_session()
    with pytest.raises(RuntimeError):
        models.get(request_for(session))
    assert isinstance(models.get(request_for(session)), Model)


def test_a_failed_build_leaves_no_object_behind_for_those_who_waited():
    """A request waiting for a build that fails builds again in the pool: its object was
    built into an entry the failure had removed, and was never closed."""
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow_then_fails():
        calls.append(1)
        if len(calls) == 1:
            started.set()
            release.wait(5)
            raise RuntimeError("first build fails")
        return Model()

    models = session_resource(slow_then_fails)
    session = new_session()
    failures, waited = [], []
    first = threading.Thread(target=lambda: _catch(failures, models, session))
    first.start()
    assert started.wait(5)
    second = threading.Thread(target=lambda: waited.append(models.get(request_for(session))))
    second.start()
    time.sleep(0.2)  # the second request waits on the build
    release.set()
    first.join(5)
    second.join(5)
    assert [type(e) for e in failures] == [RuntimeError]
    [obj] = waited
    assert models.get(request_for(session)) is obj and len(models) == 1
    models.close(session.session_key)
    drain()
    assert obj.closed  # it was in the pool, so it closes


def _catch(failures, models, session):
    try:
        models.get(request_for(session))
    except RuntimeError as exc:
        failures.append(exc)


def test_closes_slower_than_evictions_keep_memory_bounded(monkeypatch):
    """With MAX_PENDING_CLOSES closes waiting, the request that evicts closes itself."""
    from statekit.lifecycle import closing

    monkeypatch.setattr(closing, "MAX_PENDING_CLOSES", 3)
    gate = threading.Event()
    models = session_resource(Model, max_size=1, on_close=lambda obj: obj.close())
    blocker = session_resource(Model, max_size=1, on_close=lambda obj: gate.wait(5))
    blocker.get(request_for(new_session()))
    blocker.get(request_for(new_session()))  # its close holds the background thread
    objs = [models.get(request_for(new_session())) for _ in range(10)]
    try:
        assert closing._tasks.qsize() <= 3
        assert sum(obj.closed for obj in objs) >= 5  # closed in the evicting requests
    finally:
        gate.set()
        drain()
    assert [obj.closed for obj in objs] == [True] * 9 + [False]


def test_the_sweep_applies_the_ttl_while_the_session_store_is_down(monkeypatch):
    from statekit.lifecycle import resources

    idle = session_resource(Model, ttl=0.1)
    obj = idle.get(request_for(new_session()))

    def down(sessions):
        raise ConnectionError("the session store is down")

    monkeypatch.setattr(resources, "alive", down)
    time.sleep(0.2)
    sweep()
    drain()
    assert obj.closed


counters = session_resource(Model)


def count(request):
    from django.http import JsonResponse

    model = counters.get(request)
    with model.lock:
        model.count += 1
    return JsonResponse({"count": model.count, "id": id(model)})


urlpatterns = [path("count/", count), *lifecycle_app.urlpatterns]


@override_settings(ROOT_URLCONF=__name__)
def test_logout_closes_and_login_keeps_the_resource():
    client = Client()
    first = client.get("/count/").json()
    client.post("/login/")  # cycle_key: same resource under the new key
    assert client.get("/count/").json() == {"count": 2, "id": first["id"]}
    model = next(e.obj for e in counters._entries.values() if id(e.obj) == first["id"])
    client.post("/logout/")
    drain()
    assert model.closed
    assert client.get("/count/").json()["count"] == 1


def test_removed_while_being_built_it_is_closed_once_built_and_never_returned():
    building, release = threading.Event(), threading.Event()
    built: list[Model] = []

    def slow():
        if not built:
            building.set()
            release.wait(5)
        built.append(Model())
        return built[-1]

    models = session_resource(slow)
    session = new_session()
    got = []
    thread = threading.Thread(target=lambda: got.append(models.get(request_for(session))))
    thread.start()
    building.wait(5)
    models.close(session.session_key)  # closed during the build
    release.set()
    thread.join()
    drain()
    assert built[0].closed  # the object of the closed entry: closed, not handed out
    assert got == [built[1]] and not built[1].closed
    assert models.get(request_for(session)) is built[1]


def test_a_sweep_leaves_sessions_that_start_during_it():
    models = session_resource(Model)
    latecomer = new_session()
    found = []

    def alive(keys):
        found.append(models.get(request_for(latecomer)))  # a request meanwhile
        return set(keys)

    models._sweep(alive)
    drain()
    assert not found[0].closed
    assert models.get(request_for(latecomer)) is found[0]


idle_models = session_resource(Model, ttl=0.2)


def _use_after_fork(session_key: str) -> None:
    from django.db import connections

    with override_settings(STATEKIT={"RESOURCE_SWEEP_SECONDS": 0.1}):
        obj = idle_models.get(request_for(SessionStore(session_key=session_key)))
        deadline = time.monotonic() + 10
        while not obj.closed and time.monotonic() < deadline:
            time.sleep(0.1)
    connections.close_all()
    os._exit(0 if obj.closed else 1)


def test_resources_are_swept_in_a_forked_worker():
    import multiprocessing

    from django.db import connections

    session = new_session()
    connections.close_all()
    child = multiprocessing.get_context("fork").Process(
        target=_use_after_fork, args=(session.session_key,)
    )
    child.start()
    child.join(30)
    assert child.exitcode == 0  # the child's worker swept the idle object
