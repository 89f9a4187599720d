"""Page ids under abuse and after logout: a stale id is answered quietly, a forged one stays
on the security logger, and a refused request leaves nothing behind (no session, no cookie,
no stored value)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client

from statekit.exceptions import ForgedPageId, InvalidPageId, StalePageId
from statekit.state.pages import FIELD, HEADER, verify
from tests.page_app import chat

pytestmark = pytest.mark.urls("tests.page_app")

CLOSE = "/statekit/page/close/"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def loud(logs: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in logs.records if r.levelno > logging.INFO]


def security(logs: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in logs.records if r.name.startswith("django.security")]


def ask(client: Client, url: str, page_id: str | None) -> int:
    """Send ``page_id`` as statekit.js would: a form field for POST, the header otherwise."""
    if url == CLOSE:
        return client.post(url, {} if page_id is None else {FIELD: page_id}).status_code
    if url == "/chat/say/":
        data = {"text": "x", **({} if page_id is None else {FIELD: page_id})}
        return client.post(url, data).status_code
    headers = {} if page_id is None else {HEADER: page_id}
    return client.get(url, headers=headers).status_code


def ended_page() -> tuple[Client, str]:
    """A client whose page id was issued to a session that a logout has since ended."""
    client = Client()
    tab = client.get("/chat/id/").json()["page"]
    assert client.post("/chat/say/", {"text": "hi", FIELD: tab}).json() == {"chat": ["hi"]}
    client.post("/logout/")
    return client, tab


def test_the_close_beacon_after_logout_is_quiet(backend, logs):
    client, tab = ended_page()
    logs.clear()
    assert client.post(CLOSE, {FIELD: tab}).status_code == 204  # no session cookie now
    client.get("/chat/")  # the page the logout shows: a new session, a new page
    assert client.post(CLOSE, {FIELD: tab}).status_code == 204  # the new session's cookie
    assert loud(logs) == []
    assert any("session has ended" in r.getMessage() for r in logs.records)


@pytest.mark.parametrize("url", ["/chat/read/", "/chat/aread/", "/chat/say/"])
def test_a_view_given_a_stale_page_id_answers_400_off_the_security_logger(backend, logs, url):
    client, tab = ended_page()
    client.get("/chat/")
    logs.clear()
    assert ask(client, url, tab) == 400
    assert security(logs) == []
    assert all(r.levelno <= logging.WARNING for r in logs.records)  # django.request's 4xx


def test_page_ids_survive_login_and_stay_bound_to_their_session(backend, logs):
    client = Client()
    tab = client.get("/chat/id/").json()["page"]
    client.post("/chat/say/", {"text": "hi", FIELD: tab})
    client.post("/login/")
    assert client.get("/chat/read/", headers={HEADER: tab}).json() == {"chat": ["hi"]}
    other = Client()
    other.get("/chat/id/")
    logs.clear()
    assert ask(other, "/chat/read/", tab) == 400  # another live session: refused
    assert security(logs) == []


def forgeries(tab: str) -> list[str]:
    token, binding, signature = (tab + ":b").split(":")[0], "b", tab.split(":")[1]
    flip = {"0": "1"}.get(token[-1], "0")
    return [
        "junk",
        "x" * 5000,  # oversized
        f"{token[:-1]}{flip}:{binding}:{signature}",  # another token
        f"{token}:{'0' * 32}:{signature}",  # another session binding
        f"{token}:{signature}",  # the id without its binding (the old format)
        f"{token}:{binding}:{signature[:-2]}",
    ]


@pytest.mark.parametrize("url", [CLOSE, "/chat/read/", "/chat/aread/", "/chat/say/"])
def test_forged_page_ids_stay_on_the_security_logger(backend, logs, url):
    client = Client()
    tab = client.get("/chat/id/").json()["page"]
    for forged in forgeries(tab):
        logs.clear()
        assert ask(client, url, forged) == 400, forged
        assert [r.name for r in security(logs)] == ["django.security.ForgedPageId"], forged
    assert ask(client, url, tab) in (200, 204)


def test_refused_requests_leave_nothing_behind(backend):
    """200 cookieless requests with junk, stale, foreign or missing page ids: no session row,
    no cookie, no stored value."""
    _, stale = ended_page()
    owner = Client()
    foreign = owner.get("/chat/id/").json()["page"]
    owner.post("/chat/say/", {"text": "mine", FIELD: foreign})
    ids = [None, stale, foreign, *forgeries(foreign)]
    sessions, values = Session.objects.count(), len(list(backend.scan(expired=None)))
    answers = set()
    for _ in range(6):
        for page_id in ids:
            for url in (CLOSE, "/chat/read/", "/chat/aread/", "/chat/say/"):
                fresh = Client()
                answers.add(ask(fresh, url, page_id))
                assert not fresh.cookies, (url, page_id)
    get_close = Client()
    assert get_close.get(CLOSE, {FIELD: foreign}).status_code == 405
    assert not get_close.cookies
    assert answers == {204, 400}  # 204: the close of a page whose session is gone
    assert Session.objects.count() == sessions
    assert len(list(backend.scan(expired=None))) == values
    assert owner.get("/chat/read/", headers={HEADER: foreign}).json() == {"chat": ["mine"]}


@pytest.mark.django_db
def test_verify_never_creates_a_session():
    client = Client()
    tab = client.get("/chat/id/").json()["page"]
    sessions = Session.objects.count()
    for session in (SessionStore(), SessionStore(session_key="k" * 32)):
        with pytest.raises(StalePageId):
            verify(session, tab)
        with pytest.raises(ForgedPageId):
            verify(session, "junk")
        assert not session.modified and session.session_key is None
    assert Session.objects.count() == sessions
    assert issubclass(StalePageId, InvalidPageId) and issubclass(ForgedPageId, InvalidPageId)
    key = client.cookies["sessionid"].value
    assert verify(SessionStore(session_key=key), tab) == f"{key}.{tab.split(':')[0]}"
    assert chat.get(f"{key}.{tab.split(':')[0]}") == []
