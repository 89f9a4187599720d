"""Session resources given a refused page id: the request leaves nothing behind (no session
row, no cookie), as every request statekit refuses."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import path

from statekit import session_resource
from statekit.state.pages import HEADER
from tests import page_app
from tests.test_page_ids import ended_page, forgeries

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db(transaction=True)]

BUILT: list[object] = []
models = session_resource(lambda: BUILT.append(object()) or BUILT[-1])


def use(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"id": id(models.get(request))})


async def ause(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"id": id(await models.aget(request))})


urlpatterns = [path("use/", use), path("ause/", ause), *page_app.urlpatterns]


@pytest.mark.parametrize("url", ["/use/", "/ause/"])
def test_a_refused_page_id_leaves_no_session_and_no_cookie(url):
    _, stale = ended_page()
    owner = Client()
    foreign = owner.get("/chat/id/").json()["page"]
    mine = owner.get(url, headers={HEADER: foreign}).json()["id"]
    sessions, built = Session.objects.count(), len(BUILT)
    for _ in range(5):
        for page_id in [stale, foreign, *forgeries(foreign)]:
            fresh = Client()
            assert fresh.get(url, headers={HEADER: page_id}).status_code == 400, page_id
            assert not fresh.cookies, page_id
    assert Session.objects.count() == sessions
    assert len(BUILT) == built  # nothing built for a refused request either
    assert owner.get(url, headers={HEADER: foreign}).json()["id"] == mine


@pytest.mark.parametrize("url", ["/use/", "/ause/"])
def test_without_a_page_id_the_resource_still_gets_a_session(url):
    client = Client()
    first = client.get(url).json()["id"]
    assert client.cookies  # a resource needs a session: it is created and its cookie sent
    assert client.get(url).json()["id"] == first
